"""The reader's shrinking is exact area averaging in numpy, not OpenCV's fractional INTER_AREA
(whose arm64 build rounds differently, so a Raspberry Pi read some pages differently)."""

import cv2
import numpy as np
import pytest

from edgedigits.runtime.normalize import area_resize, area_resize_u8


@pytest.mark.parametrize("shape,size", [((131, 97), (15, 20)), ((40, 33), (17, 20)), ((100, 100), (50, 50)),
                                        ((77, 12), (7, 9))])
def test_area_resize_is_opencvs_area_average(shape, size):
    a = np.random.default_rng(0).random(shape).astype(np.float32)
    ours = area_resize(a, size)
    assert ours.shape == (size[1], size[0]) and ours.dtype == np.float32
    assert np.abs(ours - cv2.resize(a, size, interpolation=cv2.INTER_AREA)).max() < 1e-6
    assert np.isclose(ours.mean(), a.mean(), atol=1e-5)          # area averaging keeps the mean


def test_thumbnails_are_close_to_opencvs_on_a_photo(paper_dir):
    from edgedigits.runtime import load_image

    gray = cv2.cvtColor(load_image(paper_dir / "hypjudy_photo_4.png"), cv2.COLOR_BGR2GRAY)
    size = (240, round(240 * gray.shape[0] / gray.shape[1]))
    ours = area_resize_u8(gray, size).astype(int)
    theirs = cv2.resize(gray, size, interpolation=cv2.INTER_AREA).astype(int)
    assert ours.shape == theirs.shape and np.median(np.abs(ours - theirs)) <= 1
