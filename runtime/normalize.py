"""Turn a crop of one handwritten digit into the 28x28 image an MNIST model expects.

MNIST was made like this (LeCun et al.): each digit was scaled to fit a 20x20 box keeping its
aspect ratio, with anti-aliasing (so edges are grey), then placed in a 28x28 field so that its
centre of mass sits at the centre. Ink is white (1.0) on black (0.0). A crop that skips these steps
(for instance a whole box squashed to 28x28) reads far worse, so every crop goes through here.

One more step matters on paper: stroke width. MNIST strokes are about 2.2 px wide (10-90%:
1.6-3.1) once the digit is 20 px tall; a fine pen photographed at high resolution becomes a faint
0.5 px hairline after the same scaling, and a marker becomes a blob. `match_stroke` thickens (or
thins) the ink at the crop's own resolution so that, once scaled, its strokes are as wide as
MNIST's, unless that would close or open one of the digit's loops.
"""

import cv2
import numpy as np

from .tuning import TUNING

T = TUNING["normalize"]
BOX, SIZE = T["BOX"], T["SIZE"]   # fit into 20x20, centre in 28x28
MNIST_STROKE = T["MNIST_STROKE"]  # median stroke width of MNIST test digits once fitted in 20x20 (px)


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: 2 * area / perimeter (exact for a long even stroke,
    whatever its width: a 1 px hairline gives 1, a 6 px marker line 6)."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    area = cv2.countNonZero(m)
    if area == 0:
        return 0.0
    contours, _ = cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * area / max(perimeter, 1.0)


# crops are shrunk to this long side before their strokes are matched: the dilation that widens
# thin strokes grows with 1/scale, and on a 2000 px hairball of noise took 0.2 s a blob
MAX_CROP = T["MAX_CROP_BOXES"] * BOX


def count_holes(mask: np.ndarray) -> int:
    """Background regions enclosed by ink (a 0 or 6 has one, an 8 two)."""
    background = cv2.copyMakeBorder((~mask).astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    n, _ = cv2.connectedComponents(background, connectivity=4)
    return n - 2                                    # minus the ink (label 0) and the outside


def _adjust_stroke(ink: np.ndarray, scale: float) -> np.ndarray:
    """Dilate or erode `ink` (float, white on black) so its strokes are MNIST-wide after `scale`,
    as far as that closes no loop of the digit and opens none (a small 9 loop stays open)."""
    mask = ink > 0.5
    width = stroke_width(mask) * scale              # stroke width once fitted into 20x20
    if width <= 0:
        return ink
    if width < 0.75 * MNIST_STROKE:
        op, grow = cv2.dilate, (MNIST_STROKE - width) / scale
    elif width > 1.4 * MNIST_STROKE:
        op, grow = cv2.erode, min(width - MNIST_STROKE, 0.5 * width) / scale
    else:
        return ink
    k, holes = int(round(grow)), count_holes(mask)
    while k >= 1:
        out = op(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k + 1, k + 1)))
        if out.max() > 0.5 and count_holes(out > 0.5) == holes:
            return out
        k //= 2
    return ink

def normalize_digit(crop, ink: str = "auto", match_stroke: bool = True) -> np.ndarray:
    """MNIST-style float32 [28,28] in [0,1] from a crop of one digit (binary, grey or BGR).

    ink: "white" (white ink on black, e.g. a mask), "dark" (dark ink on light paper) or "auto"
    (the background is taken to be the majority of the crop's pixels).
    match_stroke: scale the stroke width to MNIST's (see the module docstring).
    """
    a = np.asarray(crop)
    if a.ndim == 3:
        a = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY) if a.shape[2] == 3 else a[..., 0]
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"normalize_digit takes a 2-D crop, got shape {list(np.shape(crop))}")
    a = a.astype(np.float32)
    lo, hi = cv2.minMaxLoc(a)[:2]
    if hi - lo < 1e-6:
        return np.zeros((SIZE, SIZE), np.float32)
    a = (a - lo) * (1.0 / (hi - lo))                 # ink spans 0..1, like MNIST's 0..255
    if ink == "dark" or (ink == "auto" and np.median(a) > 0.5):
        a = 1.0 - a
    x, y, w, h = cv2.boundingRect((a > 0.1).astype(np.uint8))
    a = a[y:y + h, x:x + w]
    if max(h, w) > MAX_CROP:     # a huge mark (a hairball of noise): stroke matching at a bounded size
        f = MAX_CROP / max(h, w)
        a = cv2.resize(a, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        h, w = a.shape
    scale = BOX / max(h, w)
    if match_stroke:
        a = _adjust_stroke(a, scale)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    # INTER_AREA averages (anti-aliasing) when shrinking; both keep values within 0..1
    small = cv2.resize(a, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    m = cv2.moments(small)
    cx, cy = (m["m10"] / m["m00"], m["m01"] / m["m00"]) if m["m00"] > 0 else (nw / 2, nh / 2)
    # put the centre of mass at (14, 14), keeping the whole digit inside the 28x28 field
    x0 = min(max(round(SIZE / 2 - cx), 0), SIZE - nw)
    y0 = min(max(round(SIZE / 2 - cy), 0), SIZE - nh)
    out = np.zeros((SIZE, SIZE), np.float32)
    out[y0:y0 + nh, x0:x0 + nw] = small
    return out
