"""edgedigits.runtime: read handwritten digits on photos of paper, on the device.

Needs numpy, opencv-python-headless (<5) and one interpreter: ai-edge-litert (or tflite_runtime,
or tensorflow.lite as a last resort) for .tflite, onnxruntime (or OpenCV's dnn) for .onnx.
It never imports torch; tensorflow only when it is the sole TFLite interpreter installed.

    from edgedigits.runtime import Recognizer, load_image, read_page, annotate
    keep_freed_memory()                             # glibc: no page faults from page to page
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

import ctypes
import importlib

_EXPORTS = {"Recognizer": "recognizer", "normalize_digit": "normalize", "load_image": "page",
            "read_page": "page", "annotate": "page", "Digit": "digits", "PageResult": "page"}

__all__ = [*_EXPORTS, "keep_freed_memory"]


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep the memory that reading a page frees, for the next page; True where
    it could (Linux with glibc, Raspberry Pi OS included; elsewhere nothing changes). Reading a
    page allocates and frees some 25 MB of arrays. By default glibc gives the top of its heap back
    to the system when more than twice its largest block yet freed lies free there, and takes it
    back on the next page with a page fault per 4 KB: 2,900 faults, 3.4 ms, on a 640x480 photo
    (docs/runtime.md, "Memory"). The `edgedigits` command calls it once; so should a program of
    its own that reads page after page. Blocks under 32 MB then stay on the heap, and up to 64 MB
    of it free."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):          # not glibc: macOS, Windows
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3               # glibc's <malloc.h>
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 64 << 20))


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
