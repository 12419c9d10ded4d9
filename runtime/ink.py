"""Ink on a page: the paper's light divided out, a hysteresis threshold, connected components,
and the candidate digits (blobs) they form, with the page's scale (digit height, stroke width).

Used by `page.read_page`; see its module doc for how the stages fit together.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from .rules import Rules, find_boxes, find_rules
from .tuning import TUNING

T = TUNING["ink"]


# --- helpers ------------------------------------------------------------------------------------

def downscale(image: np.ndarray, size: tuple) -> np.ndarray:
    """`image` downscaled to `size` (w, h), anti-aliased.

    Whole-number factors use INTER_AREA (exact box averages, fast in OpenCV). Other factors
    first take the whole part of the factor that way (a big photo), then blur over about one
    output pixel and finish with INTER_LINEAR: nearly the same image as INTER_AREA, whose
    fractional path is about 10 times slower on one core.
    """
    h, w = image.shape[:2]
    fx, fy = w / size[0], h / size[1]
    if fx.is_integer() and fy.is_integer():
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    k = int(min(fx, fy))
    if k >= 2:
        image = block_mean(image, k)
        h, w = image.shape[:2]
        fx, fy = w / size[0], h / size[1]
    sx, sy = 0.5 * np.sqrt(max(fx * fx - 1, 0)), 0.5 * np.sqrt(max(fy * fy - 1, 0))
    if sx > 0.1 or sy > 0.1:
        image = cv2.GaussianBlur(image, (0, 0), max(sx, 0.1), sigmaY=max(sy, 0.1),
                                 borderType=cv2.BORDER_REPLICATE)
    return resize_linear(image, size)


def linear_taps(n: int, size: int):
    """OpenCV's INTER_LINEAR taps from n samples to `size`: (first, second, their weights in
    1/2048), computed as OpenCV computes them (float32 positions, edges clamped)."""
    f = ((np.arange(size) + 0.5) * (1.0 / (size / n)) - 0.5).astype(np.float32)
    first = np.floor(f)
    f -= first
    first = first.astype(np.int64)
    f[(first < 0) | (first >= n - 1)] = 0
    first = np.clip(first, 0, n - 1)
    return first, np.minimum(first + 1, n - 1), np.rint((1 - f) * np.float32(2048)).astype(np.int32), \
        np.rint(f * np.float32(2048)).astype(np.int32)


def resize_linear(image: np.ndarray, size: tuple) -> np.ndarray:
    """cv2.resize(image, size, INTER_LINEAR) for a 2-D uint8 image, in integers, the same on every
    machine: OpenCV's own rounds differently on arm64 (grey levels one off in one pixel in six),
    and a page must read the same everywhere (see `divide_light`). The same fixed-point taps and
    rounding as OpenCV's x86 code (a few pixels in 10,000 differ from it, on the first and last row)."""
    x0, x1, a0, a1 = linear_taps(image.shape[1], size[0])
    y0, y1, b0, b1 = linear_taps(image.shape[0], size[1])
    rows = np.take(image, x0, axis=1).astype(np.int32)          # in place from here: 1.5x faster
    rows *= a0
    right = np.take(image, x1, axis=1).astype(np.int32)
    right *= a1
    rows += right
    rows >>= 4                                                   # x 128
    out, second = np.take(rows, y0, axis=0), np.take(rows, y1, axis=0)
    out *= b0[:, None]
    out >>= 16
    second *= b1[:, None]
    second >>= 16
    out += second
    out += 2
    out >>= 2
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def resize_area(image: np.ndarray, size: tuple) -> np.ndarray:
    """cv2.resize(image, size, INTER_AREA) for a 2-D uint8 image shrunk by any factor, the same on
    every machine (OpenCV's fractional INTER_AREA rounds differently on arm64; see `divide_light`):
    each output pixel the exact mean of the area it covers, rounded half to even. Rows first, then
    columns: the whole pixels an output covers are summed (`span_sums`: in integers, then in float64
    left to right, as the browser's port does), the pixels cut at its edges added in float64 in a
    fixed order. Whole factors go to OpenCV (its integer block means, the same everywhere)."""
    if image.shape[1] % size[0] == 0 and image.shape[0] % size[1] == 0:
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    out = image
    for axis, n in ((0, size[1]), (1, size[0])):
        m = out.shape[axis]
        if m == n:
            continue
        k = np.arange(n + 1) * m                         # output j covers [k[j] / n, k[j + 1] / n)
        whole, part = k // n, (k % n) / n
        pad = np.concatenate([out, np.zeros_like(np.take(out, [0], axis))], axis)
        sums = span_sums(pad, whole[:-1], whole[1:], axis)
        cut = np.expand_dims(part, 1 - axis) * np.take(pad, whole, axis)     # the share of each cut pixel
        out = (sums + np.take(cut, np.arange(1, n + 1), axis)) - np.take(cut, np.arange(n), axis)
    return np.rint(out * (size[0] * size[1] / image.size)).astype(np.uint8)


def span_sums(values: np.ndarray, start: np.ndarray, stop: np.ndarray, axis: int) -> np.ndarray:
    """values summed over the spans [start, stop) along `axis` (int32 for uint8 values, else
    float64 added left to right): one row (column) of every span at a time, a few passes of whole
    rows, where `np.add.reduceat` along rows is five times slower (and, in floats, adds a span's
    first value last)."""
    sums = np.take(values, start, axis).astype(np.int32 if values.dtype == np.uint8 else np.float64)
    for i in range(1, int((stop - start).max(initial=1))):
        at = np.flatnonzero(start + i < stop)
        if axis == 0:
            sums[at] += values[start[at] + i]
        else:
            sums[:, at] += values[:, start[at] + i]
    return sums


def block_mean(image: np.ndarray, d: int) -> np.ndarray:
    """`image` shrunk d times: the mean of each d x d block (a last partial row or column of
    blocks is left out; OpenCV's whole-factor INTER_AREA is many times faster than a fractional one)."""
    if d <= 1:
        return image
    h, w = image.shape[:2]
    hs, ws = max(1, h // d), max(1, w // d)
    if hs * d > h or ws * d > w:            # smaller than one block: a plain average
        return cv2.resize(image, (ws, hs), interpolation=cv2.INTER_AREA)
    return cv2.resize(image[:hs * d, :ws * d], (ws, hs), interpolation=cv2.INTER_AREA)


def per_label(table: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A uint8 image of table[label] for every pixel of a label image (a lookup, one pass)."""
    return np.take(table.astype(np.uint8), labels)


WINDOW = T["WINDOW"]  # with a known digit height, even out the light over this many digit heights
STRONG = T["STRONG"]  # certain ink: at least this many times as far below the paper as faint ink


# --- ink ----------------------------------------------------------------------------------------

def flatten_light(gray: np.ndarray, window: float):
    """Paper = 255, ink darker: gray divided by the paper's brightness around each pixel.

    The brightness is a morphological closing (erases dark strokes narrower than `window`, keeps
    larger shapes such as shadows) computed on a copy shrunk d times (`block_mean`), smoothed
    and scaled back up. The smoothing never brightens the closing: a box blur alone carries the
    bright paper beside a hand's shadow a window deep into it, where the shaded paper then reads
    as ink (a band of it along the shadow's edge, joined to the digits it passes). Capped by the
    closing, the map is smooth where the light is and as sharp as the closing at a shadow's edge.
    Returns (flattened page, the brightness map at 1/d scale, d).
    """
    h, w = gray.shape
    d = max(1, int(window // 6))
    small = block_mean(gray, d)
    k = int(np.ceil(window / d)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_REPLICATE)
    paper = np.minimum(cv2.blur(closed, (k, k)), closed)
    full = resize_linear(paper, (w, h)) if d > 1 else paper
    return divide_light(gray, np.maximum(full, 1)), paper, d


def divide_light(gray: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """round(255 * gray / paper) (halves to even), at most 255, in uint8: cv2.divide(gray, paper,
    scale=255) computed exactly. OpenCV's own divide rounds differently on arm64 (its own SIMD
    code and fused multiply-adds; the browser's OpenCV.js may too), and a grey level one off moves
    the ink threshold: a page must read the same on every machine. 255 * gray is exact in float64
    and one division is correctly rounded everywhere, never onto a half unless the quotient is one."""
    return np.minimum(np.rint(gray * 255.0 / paper), 255).astype(np.uint8)


def ink_threshold(flat: np.ndarray, on_paper: np.ndarray | None = None):
    """(weak, strong, paper, darkest) grey levels of a flattened page.

    The paper's level and noise are the median and the median absolute deviation (ink is a small
    fraction of a page) of the pixels `on_paper` (a dark, noisy desk would inflate them), read
    off the histogram. Weak (faint ink) = 5 noise widths below the paper and at least 8% darker;
    strong (certain ink) = halfway between paper and darkest ink, or `STRONG` times as far below
    the paper as faint ink where that is lighter (grey pencil beside black print or a dark desk
    still holds certain ink).
    """
    hist = cv2.calcHist([flat], [0], on_paper, [256], [0, 256]).ravel()
    if hist.sum() == 0:
        hist = cv2.calcHist([flat], [0], None, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist) / hist.sum()
    paper = float(np.searchsorted(cdf, 0.5))
    deviation = np.abs(np.arange(256) - paper).astype(np.int64)
    mad = np.searchsorted(np.cumsum(np.bincount(deviation, weights=hist, minlength=256)) / hist.sum(), 0.5)
    noise = 1.4826 * float(mad)
    weak = paper - max(5 * noise, 0.08 * paper, 6)
    darkest = float(np.searchsorted(cdf, 0.002))
    strong = min(weak - 1, max((paper + darkest) / 2, paper - STRONG * (paper - weak)))
    return weak, strong, paper, darkest


# --- components ---------------------------------------------------------------------------------

GRID_STRONG = T["GRID_STRONG"]  # in a printed grid, certain ink is this many times as far below the paper as faint ink
MAX_CLUTTER = T["MAX_CLUTTER"]  # digits on paper measure < 0.01 (on squared paper up to 0.05), desk texture more
MIN_LIGHT = T["MIN_LIGHT"]  # paper under a shadow keeps > 60% of the light; a dark desk 15-30%


@dataclass
class Blob:
    """A candidate digit on the page: connected components (ids into the label image) and a box."""
    ids: list
    x0: int
    y0: int
    x1: int
    y1: int
    area: int
    touches_edge: bool = False
    clutter: float = 0.0       # share of the surroundings covered by stray marks (desk texture)
    cell: tuple | None = None  # the rules around it in a table or grid: ((top, bottom), (left, right))

    @property
    def w(self):
        return self.x1 - self.x0

    @property
    def h(self):
        return self.y1 - self.y0

    def union(self, other: "Blob") -> "Blob":
        return Blob(self.ids + other.ids, min(self.x0, other.x0), min(self.y0, other.y0),
                    max(self.x1, other.x1), max(self.y1, other.y1), self.area + other.area,
                    self.touches_edge or other.touches_edge, max(self.clutter, other.clutter))


@dataclass
class Ink:
    """What the classifier needs to cut crops: the label image and the flattened page, and
    where rules were taken out of the ink (`ruled`, None without rules) with the gap a stroke
    crossing one bridges (`bridge` px, `rules.find_rules`)."""
    labels: np.ndarray
    flat: np.ndarray
    paper: float
    darkest: float
    ruled: np.ndarray | None = None
    bridge: int = 0


@dataclass
class Geometry:
    height: float      # typical digit height on the page (px)
    stroke: float      # typical stroke width (px)
    shape: tuple       # page (h, w)


def segment_ink(page: np.ndarray, window: float, rule_height: float = 0.0, sheet=None, grid=None):
    """Threshold the flattened page; take out its rules (when `rule_height`, the digit height,
    is given); label its components; mark those holding certain ink. `sheet`: the mask of a sheet
    found in part (`sheet_region`), outside which is desk; `grid`: the border of a printed grid
    (a polygon, page pixels), paper however dark its light (a hand's shadow across a sudoku)."""
    flat, light, d = flatten_light(page, window)
    # writing is on paper: where the light is far below the brightest paper of the photo there
    # is a desk around a sheet that was not found (its texture is not ink, its noise not paper's)
    on_paper = (light >= MIN_LIGHT * np.percentile(light, 98)).astype(np.uint8)
    on_paper = cv2.resize(on_paper, page.shape[::-1], interpolation=cv2.INTER_NEAREST)
    if sheet is not None:                 # the sheet found in part (`sheet_region`): the rest is desk
        on_paper &= sheet
    inside = None
    if grid is not None:                  # a grid is printed on paper, in a shadow or not
        inside = np.zeros(page.shape, np.uint8)
        cv2.fillPoly(inside, [np.round(grid).astype(np.int32)], 1)
        on_paper |= inside
    weak, strong, paper, darkest = ink_threshold(flat, on_paper)
    mask = (flat < weak).astype(np.uint8)
    rules = Rules()
    if rule_height:
        mask, rules = find_rules(mask, rule_height)
        mask, rules.boxes = find_boxes(mask, rule_height)
    # Grana's block-based labelling: the same labels and stats as the default, about 3x faster
    n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_GRANA)
    hit = np.zeros(n, bool)
    hit[labels[flat < strong]] = True               # hysteresis: faint pixels touching dark ones
    if inside is not None:                # a grid's cells hold writing: faint pencil there is too
        seed = min(weak - 1, max(strong, paper - GRID_STRONG * (paper - weak)))
        hit[labels[(flat < seed) & (inside > 0)]] = True
    hit[0] = False
    return flat, mask, labels, stats, hit, paper, darkest, on_paper, rules


SHEET_MIN = T["SHEET_MIN"]  # a sheet found in part covers at least half the view
DESK_LIGHT = T["DESK_LIGHT"]  # and what lies around it is darker than the sheet
DESK_SMOOTH = T["DESK_SMOOTH"]  # and textured (under this share smooth): wood, fabric, not paper in shadow


def bright_region(gray: np.ndarray, kernel: int = cv2.MORPH_ELLIPSE):
    """(thumbnail as float32, its scale, where it is smooth, the contour of its largest bright and
    smooth region or None), on a 320 px thumbnail; None for a tiny image. The sheet is bright
    (above Otsu's threshold) and smooth (little local variation, where a textured desk under glare
    is as bright but not smooth); `kernel`: the shape that closes and opens the region."""
    h, w = gray.shape
    s = min(1.0, 320 / max(h, w))
    thumb = resize_area(gray, (max(1, round(w * s)), max(1, round(h * s))))
    if min(thumb.shape) < 16:
        return None
    t = thumb.astype(np.float32)
    mean = cv2.blur(t, (5, 5))
    smooth = np.sqrt(np.maximum(cv2.blur(t * t, (5, 5)) - mean * mean, 0)) < 0.04 * np.maximum(mean, 1)
    _, bright = cv2.threshold(cv2.GaussianBlur(thumb, (5, 5), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    region = ((bright > 0) & smooth).astype(np.uint8) * 255
    region = cv2.morphologyEx(region, cv2.MORPH_CLOSE, cv2.getStructuringElement(kernel, (15, 15)))
    region = cv2.morphologyEx(region, cv2.MORPH_OPEN, cv2.getStructuringElement(kernel, (9, 9)))
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return t, s, smooth, (max(contours, key=cv2.contourArea) if contours else None)


def sheet_region(page: np.ndarray):
    """Where the sheet is (a 0/1 mask of page's size) when its edges run out of the view but it
    clearly stands above a darker, textured desk (wood grain is read as 1s); else None.

    The largest bright and smooth region (`bright_region`, closed and opened with rectangles: it
    runs on every view, and they are three times cheaper than ellipses): its convex hull is the
    sheet when it covers `SHEET_MIN` of the view and the rest is darker (`DESK_LIGHT`) and
    textured (`DESK_SMOOTH`): paper in a shadow is dark too, but smooth.
    """
    found = bright_region(page, cv2.MORPH_RECT)
    if found is None or found[3] is None:
        return None
    t, _, smooth, contour = found
    h, w = page.shape
    hull = np.zeros(t.shape, np.uint8)
    cv2.fillPoly(hull, [cv2.convexHull(contour)], 1)
    inside, outside = hull > 0, hull == 0
    if inside.mean() < SHEET_MIN or not outside.any():
        return None
    if t[outside].mean() > DESK_LIGHT * t[inside].mean() or smooth[outside].mean() > DESK_SMOOTH:
        return None
    return cv2.resize(hull, (w, h), interpolation=cv2.INTER_NEAREST)


# pieces beyond which a view is noise (above page.NOISE's limit for any photo): merging them, a
# Python sweep, took 3.5 s on a 1080x1920 frame of noise (25k pieces)
MAX_PIECES = T["MAX_PIECES"]
EDGE_RULE = T["EDGE_RULE"]  # a vertical rule this many digit heights from the page's side is its edge


def find_blobs(page: np.ndarray, rule_height: float = 0.0, grid=None):
    """Candidate digits on the flattened page, the ink they are cut from, the page's scale, its
    rules (taken out of the ink when `rule_height` is given) and the marks dropped on the way
    (`Mark`s: specks, texture, page edges). `grid`: a printed grid's border (`segment_ink`)."""
    h, w = page.shape
    window = max(h, w) / 25
    if rule_height:               # the writing's scale is known: follow shadows more closely
        window = min(window, WINDOW * rule_height)
    sheet = sheet_region(page)
    flat, mask, labels, stats, hit, paper, darkest, on_paper, rules = segment_ink(page, window, rule_height, sheet, grid)
    stroke = stroke_estimate(labels, stats, hit)
    if 4 * stroke > window:      # strokes as wide as the window: erase them with a wider one
        window = 6 * stroke
        flat, mask, labels, stats, hit, paper, darkest, on_paper, rules = segment_ink(page, window, rule_height, sheet, grid)
        stroke = stroke_estimate(labels, stats, hit)
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    edge = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h)
    ids = np.nonzero(hit & (area >= max(4, stroke * stroke)))[0]
    blobs = [Blob([int(i)], int(x[i]), int(y[i]), int(x[i] + bw[i]), int(y[i] + bh[i]), int(area[i]),
                  bool(edge[i])) for i in ids]
    dropped = []
    blobs = keep(blobs, lambda b: on_paper[(b.y0 + b.y1) // 2, (b.x0 + b.x1) // 2], "desk", dropped)
    if rules.mask is not None and table_columns(rules, rule_height or 0, w) >= 3:
        blobs = keep(blobs, lambda b: not cell_wall(b, rules.mask, stroke), "rule", dropped)
    # the typical digit height: area-weighted median over blobs that are not page edges
    height = typical_height(blobs, h, w)
    # marks amid stray marks are texture (a desk, fabric), not writing: drop them, measure again
    measure_clutter(blobs, labels, stats, height)
    blobs = keep(blobs, lambda b: b.clutter <= MAX_CLUTTER, "texture", dropped)
    height = typical_height(blobs, h, w)
    geom = Geometry(height, stroke, (h, w))
    # the sheet's edge, shadows and desk: too tall for a digit, large or a sliver, cut by the border
    blobs = keep(blobs, lambda b: b.h <= 3.5 * height, "too tall", dropped)
    blobs = keep(blobs, lambda b: not (b.touches_edge and (max(b.h, b.w) > 1.5 * height
                                                          or min(b.h, b.w) < 0.2 * height)), "edge", dropped)
    if len(blobs) <= MAX_PIECES:  # more is noise, not writing: left unmerged (page.py reports it)
        blobs = merge_pieces(blobs, geom)
    blobs = keep(blobs, lambda b: max(b.h, b.w) >= 0.25 * height, "speck", dropped)
    return blobs, Ink(labels, flat, paper, darkest, rules.mask, rules.bridge), geom, rules, dropped


def cell_wall(b: Blob, rules: np.ndarray, stroke: float) -> bool:
    """Whether b is a short rule between two others: a thin upright stroke that meets a rule at
    its top and at its bottom (a table's cell wall, too short to be found as a rule; a 1 written
    in a cell does not fill it from rule to rule)."""
    if b.w > 0.3 * b.h:
        return False
    reach = int(np.ceil(stroke)) + 2
    x0, x1 = max(0, b.x0 - 1), b.x1 + 1
    above = rules[max(0, b.y0 - reach):b.y0 + 1, x0:x1]
    below = rules[max(0, b.y1 - 1):b.y1 + reach, x0:x1]
    return bool(above.any() and below.any())


def table_columns(rules, height: float, width: int) -> int:
    """In how many places (more than a digit height apart) the page's vertical rules stand: a
    table's short cell walls (`cell_wall`) are looked for with three or more; ruled paper with a
    margin has one or two, and a 1 there meets the lines above and below it. A rule within
    `EDGE_RULE` digit heights of the page's left or right side (`width` px wide) is the sheet's
    edge against the desk, not a column."""
    edge = EDGE_RULE * max(height, 1)
    xs = sorted(r.at for r in rules.vertical if edge < r.at < width - edge)
    n, last = 0, None
    for x in xs:
        if last is None or x - last > max(height, 1):
            n += 1
        last = x
    return n


def keep(blobs: list, test, kind: str, dropped: list) -> list:
    """The blobs that pass `test`; the others go to `dropped` as (blob, kind)."""
    out = []
    for b in blobs:
        (out.append(b) if test(b) else dropped.append((b, kind)))
    return out


def typical_height(blobs: list, h: int, w: int) -> float:
    """Area-weighted median height of the blobs that are not page edges, rules or grids (specks
    weigh little)."""
    inner = [b for b in blobs if not b.touches_edge and b.h < 0.5 * h and b.w < 0.5 * w
             and b.w < 6 * b.h and b.h < 6 * b.w] or blobs
    return weighted_median([b.h for b in inner], [b.area for b in inner]) if inner else 0.0


def weighted_median(values, weights) -> float:
    order = np.argsort(values)
    cum = np.cumsum(np.asarray(weights, np.float64)[order])
    return float(np.asarray(values)[order][np.searchsorted(cum, cum[-1] / 2)])


def measure_clutter(blobs: list, labels: np.ndarray, stats: np.ndarray, height: float) -> None:
    """Set each blob's clutter: the share of the band around it (half a digit height wide)
    covered by small marks (under a third of a digit). About 0 on paper, where digits stand
    alone or beside other digits; desk texture and fabric are nothing but small marks."""
    if not blobs:
        return
    small = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) < height / 3
    small[0] = False
    marks = cv2.integral(per_label(small, labels))
    h, w = labels.shape

    def count(x0, y0, x1, y1):
        return int(marks[y1, x1] - marks[y0, x1] - marks[y1, x0] + marks[y0, x0])

    m = max(2, int(0.5 * height))
    for b in blobs:
        x0, y0, x1, y1 = max(0, b.x0 - m), max(0, b.y0 - m), min(w, b.x1 + m), min(h, b.y1 + m)
        ring = (x1 - x0) * (y1 - y0) - b.w * b.h
        b.clutter = (count(x0, y0, x1, y1) - count(b.x0, b.y0, b.x1, b.y1)) / max(1, ring)


def stroke_estimate(labels: np.ndarray, stats: np.ndarray, hit: np.ndarray) -> float:
    """Mean stroke width of the ink: 2 * area / boundary, over the components holding certain
    ink that are neither cut by the border nor half the page (the sheet's edge, a shadow's
    rim: thick bands that are not strokes). Specks weigh little: they are small."""
    h, w = labels.shape
    x, y, bw, bh = (stats[:, i] for i in range(4))
    inner = hit & (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h) & (bw < w / 2) & (bh < h / 2)
    area = int(stats[inner, cv2.CC_STAT_AREA].sum())
    if area == 0:
        return 1.0
    # a pixel that survives a 3x3 erosion of all the ink lies inside one component (its whole
    # neighbourhood is ink, hence connected to it): count the survivors per component
    core = cv2.erode((labels > 0).astype(np.uint8), np.ones((3, 3), np.uint8))
    eroded = int(inner[labels[core > 0]].sum())
    return max(1.0, 2.0 * area / max(1, area - eroded))


def mergeable(a: Blob, b: Blob, H: float, overlap: float = 0.5) -> bool:
    """Whether b is another piece of a's digit: stacked (overlapping in x by `overlap` of the
    narrower), close in y, and together no taller or wider than a digit (two lines never merge)."""
    shared = min(a.x1, b.x1) - max(a.x0, b.x0)
    gap = max(a.y0, b.y0) - min(a.y1, b.y1)
    height = max(a.y1, b.y1) - min(a.y0, b.y0)
    width = max(a.x1, b.x1) - min(a.x0, b.x0)
    return (shared >= overlap * min(a.w, b.w) and gap <= 0.3 * H
            and height <= 1.25 * max(H, a.h, b.h) and width <= 1.1 * max(H, a.w, b.w))


def merge_pieces(blobs: list, geom: Geometry) -> list:
    """Merge blobs that are pieces of one digit (a broken 4, a 5's detached bar), see `mergeable`.

    First a sweep from left to right joins pieces stacked on each other. Then each remaining
    bar (a flat stroke, under 0.4 digit heights) joins the digit below or above it that it
    overlaps most, even a little: a 5's bar sticks out to the right of its body."""
    H = geom.height
    blobs = sorted(blobs, key=lambda b: b.x0)
    boxes = np.array([(b.x0, b.x1, b.y0, b.y1) for b in blobs], np.int64).reshape(-1, 4)
    for i in range(len(blobs)):
        if blobs[i] is None:
            continue
        grew = True
        while grew:                                    # it grew: look again
            grew = False
            a = boxes[i]
            # later blobs that start within it and lie near it in height (mergeable's own tests)
            near = np.flatnonzero((boxes[i + 1:, 0] < a[1]) & (boxes[i + 1:, 1] > boxes[i + 1:, 0])
                                  & (boxes[i + 1:, 2] <= a[3] + 0.3 * H) & (boxes[i + 1:, 3] >= a[2] - 0.3 * H)) + i + 1
            for j in near:
                if blobs[j] is not None and mergeable(blobs[i], blobs[j], H):
                    blobs[i] = blobs[i].union(blobs[j])
                    boxes[i] = (blobs[i].x0, blobs[i].x1, blobs[i].y0, blobs[i].y1)
                    blobs[j], boxes[j] = None, (0, 0, 0, 0)
                    grew = True
                    break
    alive = [k for k, b in enumerate(blobs) if b is not None]
    blobs, boxes = [blobs[k] for k in alive], boxes[alive]
    for bar in [b for b in blobs if b.h < 0.4 * H and b.w >= 1.5 * b.h]:
        # candidates first, all at once: overlapping the bar in x and near it in y
        near = np.flatnonzero((boxes[:, 0] < bar.x1) & (boxes[:, 1] > bar.x0) & (boxes[:, 3] - boxes[:, 2] >= 0.4 * H)
                              & (boxes[:, 2] < bar.y1 + 0.3 * H) & (boxes[:, 3] > bar.y0 - 0.3 * H))
        partners = [blobs[k] for k in near if blobs[k] is not bar and mergeable(blobs[k], bar, H, 0.15)]
        if partners:
            best = max(partners, key=lambda b: min(b.x1, bar.x1) - max(b.x0, bar.x0))
            k, gone = blobs.index(best), blobs.index(bar)
            blobs[k] = best.union(bar)
            boxes[k] = (blobs[k].x0, blobs[k].x1, blobs[k].y0, blobs[k].y1)
            boxes[gone] = (0, 0, 0, 0)                  # out of every later test (x1 > x0 fails)
            blobs[gone] = None
    return [b for b in blobs if b is not None]
