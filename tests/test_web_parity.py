"""The page reader in the browser (web/src/runtime/, run by the app in Debian's chromium) reads
what the Python runtime reads (issue 11): on every photo of paper and paper-hard, given the same
decoded pixels (a lossless PNG of Python's decoded array, so the JPEG decoder is not what is
tested), the same lines on every paper photo, >= 99% of all digits equal (box, label and grid
cell), each equal digit's 28x28 input within 2/255 of Python's per pixel, and the marks set aside
(box and reason) the same on every paper photo and >= 99% equal overall. The reference is the parity
one: read_page with the int8 ONNX model on onnxruntime, the file the browser runs.

Also printed (not asserted): the lines that differ when the browser decodes the original files
itself, as a phone user's browser does (`pytest -s` shows it)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from web_fixtures import ROOT, b64

from edgedigits.runtime.images import load_image
from edgedigits.runtime.ink import resize_area
from edgedigits.runtime.page import read_page
from edgedigits.runtime.recognizer import Recognizer

MODEL = ROOT / "models" / "cnn" / "model_int8.onnx"
PHOTOS = (".jpg", ".jpeg", ".png")
CROP_TOLERANCE = 2 / 255
DIGITS_EQUAL = 0.99


def photos(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTOS)


@pytest.fixture(scope="module")
def readings(paper_dir, hard_dir):
    """{photo: (decoded BGR pixels, Python's as_dict with each digit's input28)} for both folders."""
    recognizer = Recognizer(str(MODEL), backend="onnxruntime")
    out = {}
    for photo in photos(paper_dir) + photos(hard_dir):
        image = load_image(photo)
        result = read_page(image, recognizer)
        found = result.as_dict()
        for entry, d in zip(found["digits"], result.digits):
            entry["input28"] = np.asarray(d.crop28, np.float32)
        out[photo] = (image, found)
    assert len(out) >= 30, f"expected the 30 photos of paper and paper-hard, found {len(out)}"
    return out


def read_pixels(page, image: np.ndarray) -> dict:
    """The browser's reading of `image` (BGR) sent as a lossless PNG, with each digit's input28."""
    ok, png = cv2.imencode(".png", image)
    assert ok
    found = page.evaluate("([b]) => window.edgedigits.readBase64(b, {type: 'image/png', inputs: true})",
                          [b64(png.tobytes())])
    for d in found["digits"]:
        d["input28"] = np.asarray(d["input28"], np.float32).reshape(28, 28)
    return found


def read_file(page, photo: Path) -> dict:
    kind = "image/png" if photo.suffix.lower() == ".png" else "image/jpeg"
    return page.evaluate("([b, t]) => window.edgedigits.readBase64(b, {type: t})", [b64(photo.read_bytes()), kind])


def digit_key(d: dict) -> tuple:
    return tuple(d["box"]), d["label"], d.get("row"), d.get("column")


def equal_digits(py: dict, js: dict):
    """(Python's digits that the browser read alike: the same box, label and grid cell; the largest
    per-pixel difference of their inputs)."""
    by_key = {digit_key(d): d for d in js["digits"]}
    equal, worst = 0, 0.0
    for d in py["digits"]:
        other = by_key.get(digit_key(d))
        if other is not None:
            equal += 1
            worst = max(worst, float(np.abs(d["input28"] - other["input28"]).max()))
    return equal, worst


def equal_marks(py: dict, js: dict) -> int:
    """How many of Python's rejected marks the browser set aside alike (box and reason)."""
    left = [(tuple(m["box"]), m["kind"]) for m in js["rejected"]]
    equal = 0
    for m in py["rejected"]:
        key = (tuple(m["box"]), m["kind"])
        if key in left:
            left.remove(key)
            equal += 1
    return equal


def print_what_a_phone_reads(page, readings) -> None:
    """Printed, not asserted: the lines the browser reads with its own decoders (JPEG, PNG, EXIF)
    on the original files, as a phone user's browser does, where they differ from Python's."""
    differ = []
    for photo, (_, py) in readings.items():
        js = read_file(page, photo)
        if js["lines"] != py["lines"]:
            differ.append(f"{photo.parent.name}/{photo.name}: python {py['lines']} browser {js['lines']}")
    print(f"the browser decoding the files itself: lines differ on {len(differ)}/{len(readings)} photos")
    print("\n".join(differ))


def test_the_browser_reads_what_python_reads(web_page, readings, paper_dir):
    lines_differ, digits, equal, worst_all, report = [], 0, 0, 0.0, []
    marks = marks_equal = 0
    for photo, (image, py) in readings.items():
        js = read_pixels(web_page, image)
        same, worst = equal_digits(py, js)
        digits += len(py["digits"])
        equal += same
        worst_all = max(worst_all, worst)
        alike = equal_marks(py, js)
        marks += max(len(py["rejected"]), len(js["rejected"]))
        marks_equal += alike
        if photo.parent == paper_dir and (js["lines"] != py["lines"] or alike != len(py["rejected"])
                                          or len(js["rejected"]) != len(py["rejected"])):
            lines_differ.append(f"{photo.name}: python {py['lines']} browser {js['lines']}, "
                                f"marks set aside alike {alike}/{len(py['rejected'])} (browser {len(js['rejected'])})")
        assert worst <= CROP_TOLERANCE, f"{photo.name}: a digit's 28x28 input differs by {worst * 255:.2f}/255"
        assert js["turn"] == py["turn"] and bool(js["noise"]) == py.get("noise", False), photo.name
        report.append(f"{photo.parent.name}/{photo.name}: digits {same}/{len(py['digits'])}, "
                      f"crop max diff {worst * 255:.2f}/255, marks set aside alike {alike}/{len(py['rejected'])}")
    print("\n".join(report))
    print_what_a_phone_reads(web_page, readings)
    print(f"parity: {len(readings)} photos, digits equal {equal}/{digits}, largest crop difference "
          f"{worst_all * 255:.2f}/255, marks set aside alike {marks_equal}/{marks}")
    assert not lines_differ, "paper photos read differently:\n" + "\n".join(lines_differ)
    assert equal >= DIGITS_EQUAL * digits, f"only {equal}/{digits} digits equal"
    assert marks_equal >= DIGITS_EQUAL * marks, f"only {marks_equal}/{marks} marks set aside alike"


def test_the_browsers_area_resize_is_pythons_to_the_bit(web_page):
    """`ink.resize_area` (a sheet's thumbnail) and its port `resizeArea` add the same numbers in
    the same order, left to right: equal to the bit on noise, where every rounding shows (a mean
    that is exactly half a grey level is rounded by the last bit of its sum). In these cases
    adding each span's first pixel last (`np.add.reduceat`'s order) rounds 1-8 pixels otherwise."""
    cases = [((430, 1280), (320, 108), 0), ((1923, 552), (92, 320), 3), ((564, 910), (320, 198), 2),
             ((1420, 1820), (320, 250), 1), ((1161, 1533), (173, 131), 0)]
    cases = [(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8), size) for shape, size, seed in cases]
    for image, size in cases:
        got = web_page.evaluate(
            """async ([b, rows, cols, w, h]) => {
                const { useCv } = await import('./runtime/cv.js');
                const { resizeArea } = await import('./runtime/ink.js');
                const cv = window.edgedigits.cv;
                useCv(cv);
                const bytes = Uint8Array.from(atob(b), (c) => c.charCodeAt(0));
                const mat = cv.matFromArray(rows, cols, cv.CV_8UC1, bytes);
                const out = resizeArea(mat, [w, h]);
                const data = Array.from(out.data);
                mat.delete(); out.delete();
                return data;
            }""", [b64(image.tobytes()), *image.shape, *size])
        ours = resize_area(image, size)
        assert np.array_equal(np.uint8(got).reshape(ours.shape), ours), (image.shape, size)


def test_a_photo_over_20_mp_reads_as_in_python(web_page, paper_dir):
    """A 23 MP photo (a sheet on a white desk: most phones' full resolution is 12-50 MP): the
    browser reads what Python reads. Before, it read nothing: a view of the wasm memory taken
    before a new Mat grew that memory came back empty, and the greyscale page was black."""
    sheet = load_image(paper_dir / "hypjudy_photo_4.png")
    sheet = cv2.resize(sheet, (sheet.shape[1] * 2, sheet.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    photo = np.full((5000, 4600, 3), 246, np.uint8)
    y, x = (photo.shape[0] - sheet.shape[0]) // 2, (photo.shape[1] - sheet.shape[1]) // 2
    photo[y:y + sheet.shape[0], x:x + sheet.shape[1]] = sheet
    py = read_page(photo, Recognizer(str(MODEL), backend="onnxruntime")).as_dict()
    js = read_pixels(web_page, photo)
    assert len(py["lines"]) >= 4 and js["lines"] == py["lines"], (py["lines"], js["lines"])
    assert [d["box"] for d in js["digits"]] == [d["box"] for d in py["digits"]]
