"""edgedigits.runtime: read handwritten digits on photos of paper, on the device.

Needs numpy, opencv-python-headless (<5) and one interpreter: ai-edge-litert (or tflite_runtime,
or tensorflow.lite as a last resort) for .tflite, onnxruntime (or OpenCV's dnn) for .onnx.
It never imports torch; tensorflow only when it is the sole TFLite interpreter installed.

    from edgedigits.runtime import Recognizer, load_image, read_page, annotate
    rec = Recognizer()                              # the shipped model, one thread
    result = read_page(load_image("sheet.jpg"), rec)
    result.lines                                    # ["1247673", "8952481"]
    result.digits[0].box, result.digits[0].prob     # (x, y, w, h) in the photo, 0.99

Modules: recognizer.py (models and interpreters), normalize.py (MNIST-style crops), page.py (the
photo-to-digits pipeline, input and drawing), ink.py (threshold, components, blobs), digits.py
(lines, classification, cuts of touching digits), evaluate.py (scoring against labels), cli.py (commands).
The names below load their module on first use, so importing this package (or the CLI) stays
light and works on a machine without OpenCV until a page is actually read.
"""

import importlib

_EXPORTS = {"Recognizer": "recognizer", "normalize_digit": "normalize", "load_image": "page",
            "read_page": "page", "annotate": "page", "Digit": "digits", "PageResult": "page"}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
