"""edgedigits: handwritten-digit recognition from training to the edge.

The folders of the repository are subpackages of this one namespace:
``edgedigits.train`` (train/), ``edgedigits.export`` (export/), ``edgedigits.runtime``
(runtime/), ``edgedigits.camera_demo`` (camera_demo/) and ``edgedigits.models`` (models/).
Arrows point one way: train -> export -> runtime -> camera_demo.
"""

__version__ = "0.1.0"
