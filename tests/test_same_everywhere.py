"""The page reader's own versions of the OpenCV steps whose arm64 build rounds differently from the
x86 one (issue 12: a Raspberry Pi must read a page as a laptop does): each computes what OpenCV
computes, in integers or with one IEEE rounding per operation, so that no SIMD path or fused
multiply-add can change a grey level. `make pi-check` compares whole pages on arm64; these check,
on x86 and on real photos, that each step is the operation it replaces."""

import threading
from fractions import Fraction

import cv2
import numpy as np
import pytest

from edgedigits.runtime.digits import SURE_NONE, SURE_NONE_BAND, sure_none_share
from edgedigits.runtime.images import load_image
from edgedigits.runtime.ink import divide_light, resize_area, resize_linear
from edgedigits.runtime.page import warp


@pytest.fixture(scope="module")
def gray(paper_dir):
    return cv2.cvtColor(load_image(paper_dir / "hypjudy_A4_3.png"), cv2.COLOR_BGR2GRAY)


@pytest.fixture(scope="module")
def photo(hard_dir):
    return cv2.cvtColor(load_image(hard_dir / "kawalc1_IMG_4221.jpg"), cv2.COLOR_BGR2GRAY)


@pytest.fixture(autouse=True)
def opencv_without_ipp():
    """Compare with OpenCV's own code (what arm64 runs), not Intel's IPP."""
    before = cv2.ipp.useIPP()
    cv2.ipp.setUseIPP(False)
    yield
    cv2.ipp.setUseIPP(before)


def test_divide_light_is_the_exact_rounded_quotient_for_every_pair_of_grey_levels():
    gray, paper = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(1, 256, dtype=np.uint8))
    exact = np.array([[min(255, round(Fraction(255 * g, p))) for g in range(256)] for p in range(1, 256)])
    got = divide_light(gray, paper)
    assert got.dtype == np.uint8 and (got == exact).all()            # round() halves to even, as OpenCV
    assert (got == cv2.divide(gray, paper, scale=255)).all()         # what x86 OpenCV computes


@pytest.mark.parametrize("size", [(1500, 1125), (420, 311), (2400, 3100)])
def test_resize_linear_is_opencvs_bilinear_resize(photo, size):
    ours, theirs = resize_linear(photo, size), cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR)
    differ = ours != theirs
    assert ours.shape == theirs.shape and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - theirs).max() <= 1
    assert differ.mean() < 2e-3                                     # x86's own rounding, all but the edge rows
    assert not differ[1:-1].any()
    # LINEAR_EXACT, OpenCV's bit-exact bilinear resize, is another rounding: it would change the pages
    assert (cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR_EXACT) != theirs).mean() > 10 * differ.mean()


def test_resize_area_is_the_exact_mean_of_each_area():
    rng = np.random.default_rng(12)
    image = rng.integers(0, 256, (23, 31), dtype=np.uint8)
    got = resize_area(image, (7, 5))                                 # 31/7 x 23/5 pixels an output pixel
    for j in range(5):
        for i in range(7):
            total = Fraction(0)
            for y in range(23):
                for x in range(31):
                    cover_y = max(0, min(Fraction(y + 1), Fraction(23 * (j + 1), 5)) - max(Fraction(y), Fraction(23 * j, 5)))
                    cover_x = max(0, min(Fraction(x + 1), Fraction(31 * (i + 1), 7)) - max(Fraction(x), Fraction(31 * i, 7)))
                    total += cover_y * cover_x * int(image[y, x])
            assert got[j, i] == round(total / (Fraction(23, 5) * Fraction(31, 7))), (j, i)


def test_resize_area_matches_opencvs_thumbnail_of_a_photo(gray, photo):
    for image in (gray, photo):
        h, w = image.shape
        s = 320 / max(h, w)
        size = (round(w * s), round(h * s))
        ours, theirs = resize_area(image, size), cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        assert np.abs(ours.astype(int) - theirs).max() <= 1 and (ours != theirs).sum() <= 10
    half = resize_area(photo, (photo.shape[1] // 2, photo.shape[0] // 2))   # a whole factor: OpenCV's block means
    assert (half == cv2.resize(photo, half.shape[::-1], interpolation=cv2.INTER_AREA)).all()


@pytest.mark.parametrize("border", [None, 118.0])
def test_warp_is_opencvs_perspective_warp(photo, border):
    h, w = photo.shape
    sheet = np.float32([[100, 120], [w - 80, 90], [w - 150, h - 60], [70, h - 100]])
    to_page = cv2.getPerspectiveTransform(sheet, np.float32([[0, 0], [899, 0], [899, 1199], [0, 1199]]))
    ours = warp(photo, to_page, (1000, 1300), border=border)        # reaches past the photo: the border
    edge = dict(borderMode=cv2.BORDER_REPLICATE) if border is None else dict(borderMode=cv2.BORDER_CONSTANT,
                                                                              borderValue=border)
    theirs = cv2.warpPerspective(photo, to_page, (1000, 1300), flags=cv2.INTER_LINEAR, **edge)
    assert ours.shape == theirs.shape == (1300, 1000) and ours.dtype == np.uint8
    assert (ours != theirs).mean() < 1e-3 and np.abs(ours.astype(int) - theirs).max() <= 4
    outside = cv2.warpPerspective(np.ones_like(photo), to_page, (1000, 1300), flags=cv2.INTER_NEAREST) == 0
    assert outside.mean() > 0.01
    if border is not None:
        assert (ours[outside] == border).mean() > 0.95         # (the rest: a band along the edge)


def test_the_share_of_sure_nones_moves_a_little_when_a_probability_does():
    def share(nones):
        reads = [type("Read", (), {"probs": np.array([1 - p, p])})() for p in nones]
        return sure_none_share(reads, np.array([True, False]))

    page = [0.1] * 62 + [0.9548]
    just_under, just_over = share(page + [SURE_NONE - 2e-4]), share(page + [SURE_NONE + 2e-4])
    assert 0 < just_over - just_under < (1 / 64) / 50      # a count would jump by 1/64 (0.0156 -> 0.0313)
    assert share([SURE_NONE + SURE_NONE_BAND, 0.1]) == 0.5 and share([SURE_NONE - SURE_NONE_BAND, 0.1]) == 0.0
    assert share([SURE_NONE, 0.99]) == pytest.approx(0.75)


def test_reading_a_page_turns_ipp_off_in_the_reading_thread(gray):
    from edgedigits.runtime import Recognizer, read_page

    seen = {}

    def read():
        cv2.ipp.setUseIPP(True)
        read_page(gray[:120, :200], Recognizer())
        seen["ipp"] = cv2.ipp.useIPP()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert seen == {"ipp": False}


def test_the_default_model_is_the_int8_onnx_on_onnxruntime():
    """LiteRT's int8 kernels give logits up to 0.15 apart on x86 and arm64, onnxruntime's 1e-6:
    the default page model is the one whose readings do not depend on the machine."""
    from edgedigits.runtime import Recognizer
    from edgedigits.runtime.recognizer import default_model_path, installed

    if not installed("onnxruntime"):
        pytest.skip("onnxruntime not installed: the .tflite is the default")
    rec = Recognizer()
    assert default_model_path().name == "model_int8.onnx"
    assert (rec.path.name, rec.backend) == ("model_int8.onnx", "onnxruntime") and "onnx_int8@" in rec.model_id
