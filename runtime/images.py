"""Reading image files safely, and keeping native libraries quiet.

`load_image` reads the size from the file's header before anything is decoded (Pillow opens a file
lazily: only the header is parsed), refuses images over a pixel limit (a PNG that claims
100000x100000 px is a few hundred bytes: a decompression bomb), decodes very large ones at
1/2, 1/4 or 1/8 scale (OpenCV's reduced decoding: a JPEG is never expanded in full), and keeps
libpng's warnings off stderr. A file whose header Pillow cannot parse still goes to OpenCV, under
OpenCV's own pixel limit.

The lowest layer of the runtime: it imports nothing from the rest of the package but errors.py.
"""

import io
import os
import warnings
from contextlib import contextmanager

import numpy as np

# OpenCV's own limit for what it decodes (read once, on its first decode); ours is checked first
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 30))

import cv2  # noqa: E402

from edgedigits.common import quiet_output  # noqa: E402
from edgedigits.errors import EdgeDigitsError  # noqa: E402

MAX_PIXELS = 100_000_000      # default limit (--max-pixels): a 100 MP photo is 300 MB decoded
REDUCE_ABOVE = 50_000_000     # decode images over this many pixels at 1/2, 1/4 or 1/8 scale
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


@contextmanager
def quiet_opencv(stderr: bool = True):
    """Silence OpenCV's own log lines and, with `stderr`, what its codecs and FFmpeg write to file
    descriptor 2 (libpng warnings, "moov atom not found"): a broken file is reported once, as an
    EdgeDigitsError."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        with quiet_output(stdout=False, stderr=stderr):
            yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def header_size(data: bytes, what="image"):
    """(width, height, format, mode) from an image file's header, without decoding it; None when
    Pillow does not know the format (our own limit applies, not Pillow's bomb check)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # bomb warnings, broken TIFF tags, EXIF
            with Image.open(io.BytesIO(data)) as im:
                return int(im.size[0]), int(im.size[1]), im.format, im.mode
    except Image.DecompressionBombError:       # over twice Pillow's limit: its size, unchecked
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        try:
            with _no_pillow_limit(Image), Image.open(io.BytesIO(data)) as im:
                return int(im.size[0]), int(im.size[1]), im.format, im.mode
        except Exception:                      # noqa: BLE001 -- a broken file that claims to be huge
            raise EdgeDigitsError(f"{what}: its header claims over {limit / 1e6:.0f} MP and it cannot be read") from None
    except (UnidentifiedImageError, Exception):   # noqa: BLE001 -- Pillow's parsers raise OSError,
        return None     # SyntaxError, struct.error, ValueError... on a broken or unknown header


@contextmanager
def _no_pillow_limit(Image):
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def check_size(width: int, height: int, max_pixels: int, what) -> None:
    if width <= 0 or height <= 0:
        raise EdgeDigitsError(f"{what}: its header says {width}x{height} pixels")
    if width * height > max_pixels:
        raise EdgeDigitsError(f"{what}: {width}x{height} pixels is over the limit of "
                              f"{max_pixels / 1e6:g} MP (raise it with --max-pixels)")


def decode_image(data: np.ndarray, max_pixels: int = MAX_PIXELS, what="image") -> np.ndarray:
    """BGR uint8 from an encoded image's bytes (EdgeDigitsError if it cannot be decoded or is
    over `max_pixels`); very large images come back at 1/2, 1/4 or 1/8 scale."""
    size = header_size(data.tobytes(), what)
    flags, mode = cv2.IMREAD_COLOR, None
    if size is not None:
        width, height, fmt, mode = size
        check_size(width, height, max_pixels, what)
        factor = 1
        while factor < 8 and width * height / factor ** 2 > REDUCE_ABOVE:
            factor *= 2
        if factor > 1:
            flags = _REDUCED[factor]
        if fmt == "GIF":     # Pillow's decoder (OpenCV before 4.11 has none)
            return undither(_decode_gif(data.tobytes(), what))
    try:
        with quiet_opencv():
            image = cv2.imdecode(data, flags)
    except cv2.error as e:
        raise EdgeDigitsError(f"{what}: OpenCV cannot decode it ({str(e).strip().splitlines()[-1][:160]})") \
            from None
    if image is None or image.size == 0:
        raise EdgeDigitsError(f"{what}: not an image OpenCV can decode")
    if size is None:         # a format only OpenCV knows: check what it decoded
        check_size(image.shape[1], image.shape[0], max_pixels, what)
    return undither(image) if mode == "P" else image


def undither(image: np.ndarray) -> np.ndarray:
    """A palette image (a GIF, a 256-colour PNG), smoothed by a small Gaussian (sigma 0.7 px): a
    dithered palette scatters paper and strokes into dots that the ink threshold reads as specks
    and broken strokes (a web-palette GIF of the paper photos read 5 of 16 pages as their PNG
    did; 13 of 16 once smoothed)."""
    return cv2.GaussianBlur(image, (0, 0), 0.7)


def _decode_gif(data: bytes, what) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            rgb = np.asarray(im.convert("RGB"))
    except Exception as e:       # Pillow raises many types on a broken file
        raise EdgeDigitsError(f"{what}: not a GIF that can be decoded ({type(e).__name__})") from None
    return np.ascontiguousarray(rgb[..., ::-1])


def max_pixels_setting() -> int:
    """The pixel limit: $EDGEDIGITS_MAX_PIXELS (set by the commands' --max-pixels), else MAX_PIXELS."""
    try:
        return max(1, int(os.environ.get("EDGEDIGITS_MAX_PIXELS", MAX_PIXELS)))
    except ValueError:
        return MAX_PIXELS


def load_image(path, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as BGR uint8 (EdgeDigitsError if it is missing, empty, not an image, or
    over `max_pixels` by its header; default `max_pixels_setting()`)."""
    max_pixels = max_pixels or max_pixels_setting()
    try:
        data = np.fromfile(str(path), np.uint8)
    except FileNotFoundError:
        raise EdgeDigitsError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise EdgeDigitsError(f"{path}: is a folder, not an image") from None
    except OSError as e:
        raise EdgeDigitsError(f"{path}: cannot read ({e.strerror})") from None
    if data.size == 0:
        raise EdgeDigitsError(f"{path}: empty file")
    return decode_image(data, max_pixels, path)
