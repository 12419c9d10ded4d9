"""Read every handwritten digit on a photo of paper: page -> ink -> components -> digits -> lines.

    image = load_image("sheet.jpg")
    result = read_page(image, Recognizer())
    result.lines          # ["1247673", "8952481"], lines top to bottom, digits left to right
    result.digits[0]      # Digit(box=(x, y, w, h), line=0, label="1", prob=0.99, ...)

The stages, as timed in `result.timings` (ms):

prepare   greyscale; photos with a side over `max_side` are shrunk first (bounded time and memory).
page      a bright sheet on a darker desk is found on a thumbnail (bright and smooth, where a desk
          is dark or textured) and later warped flat by a perspective transform; a photo that is
          already the page is used whole.
ink       the page is measured on a 600 px view (digit height, stroke width), then viewed again
          at the scale where digits are `digit_height` px tall, so every window below follows the
          writing, never a fixed pixel size. The paper's brightness (a morphological closing that
          erases strokes but keeps shadows) is divided out; a hysteresis threshold set from the
          paper's own noise keeps faint pixels that touch dark ones (thin pencil survives, paper
          grain does not). Connected components keep their holes (an 8 is not a 0). Marks on a
          dark background or amid clutter (a desk), page edges and specks are dropped; pieces of
          one digit are merged (a 5's detached bar, a broken 4).
lines     blobs are chained into lines left to right; a wide gap starts a new line (two columns);
          lines are read top to bottom, left block before right block.
classify  every blob is normalised the MNIST way and classified in one batch; wide blobs are cut
          at thin joins or outline dips, and the cut whose pieces the classifier reads best (with
          a prior on digit width) wins; doubtful non-digits are dropped; boxes are mapped back to
          the input photo.
"""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import cv2
import numpy as np

from edgedigits.errors import EdgeDigitsError

from .normalize import normalize_digit


@dataclass
class Options:
    """Tuning knobs of `read_page` (all sizes are relative to the page, never pixels)."""
    max_side: int = 2000          # downscale photos whose long side is larger (speed, memory)
    digit_height: float = 36      # segment at the resolution where digits are about this tall (px)
    page: bool = True             # look for a sheet on a darker desk and flatten it
    split: bool = True            # try to cut wide blobs into touching digits
    low_confidence: float = 0.7   # flag digits whose probability is below this
    reject: float = 0.35          # drop doubtful blobs (odd shape) whose probability is below this
    line_gap: float = 3.0         # a horizontal gap wider than this many digit heights starts a new line
    match_stroke: bool = True     # thicken/thin strokes to MNIST's width before classifying


@dataclass
class Digit:
    """One digit read on the page. `box` is (x, y, w, h) in the input image's pixels."""
    box: tuple
    line: int
    label: str
    prob: float
    low_confidence: bool
    crop28: np.ndarray = field(repr=False)   # float32 [28,28], what the model saw
    crop: np.ndarray = field(repr=False)     # uint8, the box cut from the input image


@dataclass
class PageResult:
    """What `read_page` found: digits in reading order, line strings, timings, the sheet."""
    digits: list
    lines: list
    timings: dict
    page: np.ndarray | None = None           # 4x2 corners of the sheet in input pixels, if found

    def as_dict(self) -> dict:
        return {"lines": self.lines,
                "digits": [{"box": [int(v) for v in d.box], "line": d.line, "label": d.label,
                            "probability": round(float(d.prob), 4),
                            "low_confidence": d.low_confidence} for d in self.digits]}


# --- the pipeline --------------------------------------------------------------------------------

class _Clock:
    def __init__(self):
        self.t0 = self.t = time.perf_counter()
        self.timings = {}

    def lap(self, name):
        now = time.perf_counter()
        self.timings[name] = round((now - self.t) * 1000, 3)
        self.t = now

    def total(self):
        self.timings["total"] = round((time.perf_counter() - self.t0) * 1000, 3)
        return self.timings


def read_page(image: np.ndarray, recognizer, **options) -> PageResult:
    """All the digits on a photo of paper (BGR or gray uint8), in reading order. See the module doc."""
    try:
        opt = Options(**options)
    except TypeError:
        known = ", ".join(f.name for f in fields(Options))
        raise EdgeDigitsError(f"unknown read_page option in {sorted(options)}; known: {known}") from None
    clock = _Clock()
    gray, scale = to_gray(image, opt.max_side)
    clock.lap("prepare")

    corners = find_page(gray) if opt.page and min(gray.shape) >= 32 else None
    clock.lap("page")

    digits, texts = [], []
    if min(gray.shape) >= 8:
        # measure the writing on a small view of the page, then segment it where digits are
        # `digit_height` px tall (a 12 MP photo shrinks, small writing is enlarged)
        probe = min(1.0, 600 / max(gray.shape))
        page, to_gray_px = page_view(gray, corners, probe)
        blobs, ink, geom = find_blobs(page)
        if probe < 1 and (not blobs or geom.height < 8):     # too small to measure: look closer
            probe = 1.0
            page, to_gray_px = page_view(gray, corners, probe)
            blobs, ink, geom = find_blobs(page)
        if blobs and geom.height < 6 * probe:                 # specks, not writing
            blobs = []
        if blobs:
            zoom = probe * float(np.clip(opt.digit_height / geom.height, 0.05, 3.0))
            if not 0.8 <= zoom / probe <= 1.25:
                page, to_gray_px = page_view(gray, corners, zoom)
                blobs, ink, geom = find_blobs(page)
        clock.lap("ink")
        lines = group_lines(blobs, geom, opt.line_gap)
        clock.lap("lines")
        reads = classify_blobs(lines, ink, geom, recognizer, opt)
        reads, texts = finish_lines(reads, recognizer.labels, opt)

        def to_input(points):        # page pixels -> input image pixels
            return cv2.perspectiveTransform(np.float32(points)[None], to_gray_px)[0] / scale

        digits = to_digits(image, reads, to_input, recognizer.labels, opt)
        clock.lap("classify")
    page_corners = corners / scale if corners is not None else None
    return PageResult(digits, texts, clock.total(), page_corners)


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
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


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


# --- input --------------------------------------------------------------------------------------

@contextmanager
def quiet_opencv():
    """Silence OpenCV's own log lines (a broken file is reported once, as an EdgeDigitsError)."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def load_image(path) -> np.ndarray:
    """Read an image file as BGR uint8 (EdgeDigitsError if it is missing, empty or not an image)."""
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
    with quiet_opencv():
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise EdgeDigitsError(f"{path}: not an image OpenCV can decode")
    return image


def to_gray(image: np.ndarray, max_side: int):
    """Greyscale uint8, downscaled (after the colour conversion: one channel to shrink, not
    three) if the long side > max_side."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise EdgeDigitsError(f"read_page takes a uint8 image, got {image.dtype}")
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise EdgeDigitsError(f"read_page takes an HxW or HxWx3 image, got shape {list(image.shape)}")
    if image.ndim == 3:
        code = {1: None, 3: cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_BGRA2GRAY}.get(image.shape[2], -1)
        if code == -1:
            raise EdgeDigitsError(f"read_page takes 1, 3 or 4 channels, got {image.shape[2]}")
        image = image[..., 0] if code is None else cv2.cvtColor(image, code)
    image = np.ascontiguousarray(image)
    h, w = image.shape
    scale = min(1.0, max_side / max(h, w))
    if scale < 1:
        image = downscale(image, (max(1, round(w * scale)), max(1, round(h * scale))))
    return image, scale


# --- page ---------------------------------------------------------------------------------------

def order_corners(pts: np.ndarray) -> np.ndarray:
    """Corners as top-left, top-right, bottom-right, bottom-left."""
    pts = pts.reshape(4, 2).astype(np.float32)
    c = pts.mean(0)
    angles = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(angles)]                      # clockwise from the left (image y down)
    start = np.argmin(pts.sum(1))                      # top-left: smallest x + y
    return np.roll(pts, -start, axis=0)


def find_page(gray: np.ndarray):
    """Corners (4x2, gray's pixels) of a bright sheet clearly lit above a darker desk, else None.

    Works on a 320 px thumbnail. The sheet is bright (above Otsu's threshold) and smooth (little
    local variation, where a textured desk under glare is as bright but not smooth); the largest
    such region is approximated by a quadrilateral, which must cover 4-90% of the photo, fill it
    well, and be at least twice as bright as what lies outside it (so a shadow across a cropped
    sheet is not taken for a page edge).
    """
    h, w = gray.shape
    s = min(1.0, 320 / max(h, w))
    thumb = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    if min(thumb.shape) < 16:
        return None
    # the sheet is bright and smooth; a desk is darker, and where glare makes it as bright, it
    # is textured (a high local coefficient of variation)
    t = thumb.astype(np.float32)
    mean = cv2.blur(t, (5, 5))
    var = np.maximum(cv2.blur(t * t, (5, 5)) - mean * mean, 0)
    smooth = np.sqrt(var) < 0.04 * np.maximum(mean, 1)
    _, bright = cv2.threshold(cv2.GaussianBlur(thumb, (5, 5), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    sheet = ((bright > 0) & smooth).astype(np.uint8) * 255
    sheet = cv2.morphologyEx(sheet, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
    sheet = cv2.morphologyEx(sheet, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    contours, _ = cv2.findContours(sheet, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    sheet = max(contours, key=cv2.contourArea)
    hull = cv2.convexHull(sheet)
    quad = None
    for eps in (0.02, 0.03, 0.04, 0.06, 0.08, 0.1):
        approx = cv2.approxPolyDP(hull, eps * cv2.arcLength(hull, True), True)
        if len(approx) == 4:
            quad = approx
            break
        if len(approx) < 4:
            break
    if quad is None:
        return None
    area = cv2.contourArea(quad)
    if not 0.04 <= area / thumb.size <= 0.9 or cv2.contourArea(sheet) < 0.85 * area:
        return None
    inside = np.zeros_like(thumb)
    cv2.fillPoly(inside, [quad], 255)
    if t[inside == 0].mean() > 0.5 * t[inside > 0].mean():
        return None
    return order_corners(quad) / s


def page_view(gray: np.ndarray, corners, zoom: float):
    """The page at `zoom` times `gray`'s resolution: the sheet flattened to a rectangle if its
    corners are given, else the whole image. Returns (page, homography page px -> gray px)."""
    if corners is None:
        h, w = gray.shape
        size = (max(1, round(w * zoom)), max(1, round(h * zoom)))
        if size == (w, h):
            return gray, np.eye(3)
        page = downscale(gray, size) if zoom < 1 else cv2.resize(gray, size, interpolation=cv2.INTER_CUBIC)
        return page, np.diag([w / size[0], h / size[1], 1.0])
    if zoom < 0.75:                  # shrink first (anti-aliased), then warp
        h, w = gray.shape
        small = downscale(gray, (max(1, round(w * zoom)), max(1, round(h * zoom))))
        shrink = np.diag([gray.shape[1] / small.shape[1], gray.shape[0] / small.shape[0], 1.0])
        page, to_small = page_view(small, corners / np.diag(shrink)[:2], 1.0)
        return page, shrink @ to_small
    tl, tr, br, bl = corners
    width = max(1, round(zoom * (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2))
    height = max(1, round(zoom * (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2))
    dst = np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    to_page = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    page = cv2.warpPerspective(gray, to_page, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
    return page, np.linalg.inv(to_page)


# --- ink ----------------------------------------------------------------------------------------

def flatten_light(gray: np.ndarray, window: float):
    """Paper = 255, ink darker: gray divided by the paper's brightness around each pixel.

    The brightness is a morphological closing (erases dark strokes narrower than `window`, keeps
    larger shapes such as shadows) computed on a copy shrunk d times (`block_mean`), smoothed
    and scaled back up. Returns (flattened page, the brightness map at 1/d scale, d).
    """
    h, w = gray.shape
    d = max(1, int(window // 6))
    small = block_mean(gray, d)
    k = int(np.ceil(window / d)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_REPLICATE)
    paper = cv2.blur(paper, (k, k))
    full = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR) if d > 1 else paper
    return cv2.divide(gray, np.maximum(full, 1), scale=255), paper, d


def ink_threshold(flat: np.ndarray, on_paper: np.ndarray | None = None):
    """(weak, strong, paper, darkest) grey levels of a flattened page.

    The paper's level and noise are the median and the median absolute deviation (ink is a small
    fraction of a page) of the pixels `on_paper` (a dark, noisy desk would inflate them), read
    off the histogram. Weak (faint ink) = 5 noise widths below the paper and at least 8% darker;
    strong (certain ink) = halfway between paper and darkest ink.
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
    strong = min(weak - 1, (paper + darkest) / 2)
    return weak, strong, paper, darkest


# --- components ---------------------------------------------------------------------------------

MAX_CLUTTER = 0.03     # digits on paper measure < 0.01, desk texture mostly more
MIN_LIGHT = 0.45       # paper under a shadow keeps > 60% of the light; a dark desk 15-30%


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
    """What the classifier needs to cut crops: the label image and the flattened page."""
    labels: np.ndarray
    flat: np.ndarray
    paper: float
    darkest: float


@dataclass
class Geometry:
    height: float      # typical digit height on the page (px)
    stroke: float      # typical stroke width (px)
    shape: tuple       # page (h, w)


def segment_ink(page: np.ndarray, window: float):
    """Threshold the flattened page; label its components; mark those holding certain ink."""
    flat, light, d = flatten_light(page, window)
    # writing is on paper: where the light is far below the brightest paper of the photo there
    # is a desk around a sheet that was not found (its texture is not ink, its noise not paper's)
    on_paper = (light >= MIN_LIGHT * np.percentile(light, 98)).astype(np.uint8)
    on_paper = cv2.resize(on_paper, page.shape[::-1], interpolation=cv2.INTER_NEAREST)
    weak, strong, paper, darkest = ink_threshold(flat, on_paper)
    mask = (flat < weak).astype(np.uint8)
    # Grana's block-based labelling: the same labels and stats as the default, about 3x faster
    n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_GRANA)
    hit = np.zeros(n, bool)
    hit[labels[flat < strong]] = True               # hysteresis: faint pixels touching dark ones
    hit[0] = False
    return flat, mask, labels, stats, hit, paper, darkest, on_paper


def find_blobs(page: np.ndarray):
    """Candidate digits on the flattened page, the ink they are cut from, and the page's scale."""
    h, w = page.shape
    window = max(h, w) / 25
    flat, mask, labels, stats, hit, paper, darkest, on_paper = segment_ink(page, window)
    stroke = stroke_estimate(labels, stats, hit)
    if 4 * stroke > window:      # strokes as wide as the window: erase them with a wider one
        window = 6 * stroke
        flat, mask, labels, stats, hit, paper, darkest, on_paper = segment_ink(page, window)
        stroke = stroke_estimate(labels, stats, hit)
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    edge = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h)
    ids = np.nonzero(hit & (area >= max(4, stroke * stroke)))[0]
    blobs = [Blob([int(i)], int(x[i]), int(y[i]), int(x[i] + bw[i]), int(y[i] + bh[i]), int(area[i]),
                  bool(edge[i])) for i in ids]
    blobs = [b for b in blobs if on_paper[(b.y0 + b.y1) // 2, (b.x0 + b.x1) // 2]]   # not on a desk
    # the typical digit height: area-weighted median over blobs that are not page edges
    height = typical_height(blobs, h, w)
    # marks amid stray marks are texture (a desk, fabric), not writing: drop them, measure again
    measure_clutter(blobs, labels, stats, height)
    blobs = [b for b in blobs if b.clutter <= MAX_CLUTTER]
    height = typical_height(blobs, h, w)
    geom = Geometry(height, stroke, (h, w))
    # the sheet's edge, shadows and desk: too tall for a digit, or large and cut by the border
    blobs = [b for b in blobs if b.h <= 3.5 * height
             and not (b.touches_edge and max(b.h, b.w) > 1.5 * height)]
    blobs = merge_pieces(blobs, geom)
    blobs = [b for b in blobs if max(b.h, b.w) >= 0.25 * height]      # specks
    return blobs, Ink(labels, flat, paper, darkest), geom


def typical_height(blobs: list, h: int, w: int) -> float:
    """Area-weighted median height of the blobs that are not page edges (specks weigh little)."""
    inner = [b for b in blobs if not b.touches_edge and b.h < 0.5 * h and b.w < 0.5 * w] or blobs
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
    i = 0
    while i < len(blobs):
        j = i + 1
        while j < len(blobs) and blobs[j].x0 < blobs[i].x1:
            if mergeable(blobs[i], blobs[j], H):
                blobs[i] = blobs[i].union(blobs.pop(j))
                j = i + 1                              # it grew: look again
            else:
                j += 1
        i += 1
    for bar in [b for b in blobs if b.h < 0.4 * H and b.w >= 1.5 * b.h]:
        partners = [b for b in blobs if b is not bar and b.h >= 0.4 * H and mergeable(b, bar, H, 0.15)]
        if partners:
            best = max(partners, key=lambda b: min(b.x1, bar.x1) - max(b.x0, bar.x0))
            blobs[blobs.index(best)] = best.union(bar)
            blobs.remove(bar)
    return blobs


# --- lines --------------------------------------------------------------------------------------

@dataclass
class Line:
    """Blobs chained left to right, where their bodies start and how tall they are."""
    blobs: list
    top: float = 0.0
    height: float = 0.0

    def measure(self):
        # the height of the line's tall-but-ordinary digits: small 0s and long tails are outliers
        self.height = float(np.percentile([b.h for b in self.blobs], 60))
        self.top = float(np.median([b.y0 for b in self.blobs]))
        return self


def core_y(b, height: float) -> float:
    """A blob's height on the page: the middle of its top part (tails of 7s, 9s, 4s hang below)."""
    return b.y0 + min(b.h, height) / 2


def group_lines(blobs: list, geom: Geometry, line_gap: float) -> list:
    """Lines in reading order: top to bottom, and left block before right block in a row.

    Blobs are taken left to right and each joins the line whose last blobs sit at its height
    (within 0.6 digit heights), so slightly slanted lines still chain; a gap wider than
    `line_gap` digit heights ends a line (two columns of writing become two lines).
    """
    H = geom.height
    chains, levels = [], []                          # blobs of each line, their core heights
    for b in sorted(blobs, key=lambda b: b.x0):
        y = core_y(b, H)
        best, dist = None, 0.6 * H
        for n, (ln, ys) in enumerate(zip(chains, levels)):
            d = abs(sum(ys[-3:]) / len(ys[-3:]) - y)
            if d < dist and b.x0 - ln[-1].x1 <= line_gap * H:
                best, dist = n, d
        if best is None:
            chains.append([b])
            levels.append([y])
        else:
            chains[best].append(b)
            levels[best].append(y)
    lines = [Line(ln).measure() for ln in chains]
    lines.sort(key=lambda ln: ln.top + ln.height / 2)
    rows = []                                       # lines side by side at the same height
    for ln in lines:
        mid = ln.top + ln.height / 2
        if rows and abs(rows[-1][0] - mid) < 0.6 * H:
            rows[-1][1].append(ln)
        else:
            rows.append([mid, [ln]])
    return [ln for _, row in rows for ln in sorted(row, key=lambda ln: ln.blobs[0].x0)]


# --- classification -----------------------------------------------------------------------------

@dataclass
class Read:
    """A classified piece of the page (page pixels)."""
    x0: int
    y0: int
    x1: int
    y1: int
    probs: np.ndarray
    crop28: np.ndarray
    line: int
    odd: bool = False          # a shape that is doubtful as a digit (rejected if also unsure)


SPLIT_COST = 0.5       # each extra piece must buy at least this much log-probability


def blob_ink(ink: Ink, b: Blob) -> np.ndarray:
    """The blob's ink as float white-on-black in [0,1] over its box.

    Only the blob's own components are kept (a neighbour reaching into its box is masked out;
    holes stay holes); faint edge pixels keep their grey level, like MNIST's anti-aliasing.
    """
    labels = ink.labels[b.y0:b.y1, b.x0:b.x1]
    mask = labels == b.ids[0] if len(b.ids) == 1 else np.isin(labels, b.ids)
    flat = ink.flat[b.y0:b.y1, b.x0:b.x1].astype(np.float32)
    darkness = (ink.paper - flat) * (1.0 / max(ink.paper - ink.darkest, 1.0))   # > 0 on ink
    return np.minimum(darkness, 1.0) * mask


def variants(v: np.ndarray, line: Line) -> list:
    """The ways to read a blob: as it is, and for a blob much taller than its line (a 7 or 9 with
    a long tail: MNIST digits have none, and the model reads a long 7 as a 1) without the end of
    its tail. Each is (ink, x offset, y offset), trimmed to its ink."""
    out = []
    cuts = [v.shape[0]]
    if v.shape[0] > 1.4 * line.height:
        cuts.append(int(round(1.2 * line.height)))
    for rows in cuts:
        box = trim(v[:rows])
        if box is not None:
            y0, y1, x0, x1 = box
            out.append((v[y0:y1, x0:x1], x0, y0))
    return out


def holes(ink: np.ndarray) -> np.ndarray:
    """Background pixels enclosed by ink (the inside of a 0, 6, 8, 9)."""
    background = cv2.copyMakeBorder((~ink).astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    n, labels = cv2.connectedComponents(background, connectivity=4)
    return (labels != labels[0, 0])[1:-1, 1:-1] & ~ink


def cut_columns(v: np.ndarray, height: float, most: int) -> list:
    """Candidate x positions to cut a blob of touching digits.

    Three signals, as in classic touching-digit segmentation: minima of the column ink count
    (thin joins), valleys of the top contour and peaks of the bottom contour (where two round
    digits touch, the count is high but the outline dips). A cut never crosses a hole (it would
    halve a 0 or an 8). The `most` thinnest are kept, spaced apart.
    """
    ink = v > 0.3
    h, w = ink.shape
    count = ink.sum(0).astype(np.float32)
    any_ink = count > 0
    top = np.where(any_ink, ink.argmax(0), h).astype(np.float32)
    bottom = np.where(any_ink, h - 1 - ink[::-1].argmax(0), -1).astype(np.float32)
    through_hole = holes(ink).any(0)
    margin = max(2, int(0.15 * height))
    cands = set()
    for signal in (count, -top, bottom):
        s = np.convolve(signal, np.ones(3) / 3, mode="same")
        cands.update(c for c in range(margin, w - margin)
                     if s[c] <= s[c - 1] and s[c] <= s[c + 1] and not through_hole[c])
    chosen = []
    for c in sorted(cands, key=lambda c: count[c]):
        if all(abs(c - o) >= margin for o in chosen):
            chosen.append(c)
        if len(chosen) == most:
            break
    return sorted(chosen)


def trim(v: np.ndarray):
    """Bounding rows/cols of the ink in v: (y0, y1, x0, x1) or None."""
    x, y, w, h = cv2.boundingRect((v > 0.05).astype(np.uint8))
    return (y, y + h, x, x + w) if w > 0 else None


def shape_cost(v: np.ndarray, line: Line, width: float, piece: bool = False) -> float:
    """Negative log-prior of some ink being one digit: wider than a typical digit, a speck, or
    (for a piece cut from a blob) in several fragments: a cut through one digit leaves scraps,
    two touching digits part cleanly."""
    h, w = v.shape
    cost = 2.5 * max(0.0, w / width - 1.6)
    if max(w, h) < 0.35 * line.height:
        cost += 2.0
    if piece:
        ink = (v > 0.3).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        big = stats[1:, cv2.CC_STAT_AREA] >= max(4, 0.02 * cv2.countNonZero(ink))
        cost += 1.0 * max(0, int(big.sum()) - 1)
    return cost


def classify_blobs(lines: list, ink: Ink, geom: Geometry, recognizer, opt: Options) -> list:
    """Classify every blob in one batch; cut wide ones where the classifier reads the pieces best.

    A wide blob gets candidate cuts (`cut_columns`); every piece between two cuts is classified
    (one more batch), and dynamic programming picks the cut maximising
    sum(log p(piece)) - shape costs - SPLIT_COST per piece; the blob stays whole if that wins.
    """
    items = [(i, b) for i, ln in enumerate(lines) for b in ln.blobs]
    if not items:
        return []
    # typical width of a digit (ignoring 1s): the yardstick for "too wide to be one digit"
    widths = [b.w for i, b in items if b.w > 0.35 * min(b.h, 2 * lines[i].height)]
    width = float(np.median(widths)) if widths else geom.height * 0.6
    # every blob (and its tail-less variant) classified in one batch; the likelier reading wins
    options, crops = [], []
    for k, (i, b) in enumerate(items):
        for v, dx, dy in variants(blob_ink(ink, b), lines[i]):
            options.append((k, v, b.x0 + dx, b.y0 + dy))
            crops.append(normalize_digit(v, ink="white", match_stroke=opt.match_stroke))
    if not crops:
        return []
    probs = recognizer.predict(np.stack(crops))
    best, best_score = {}, {}
    for j, (k, v, *_rest) in enumerate(options):
        score = np.log(probs[j].max() + 1e-6) - shape_cost(v, lines[items[k][0]], width)
        if k not in best or score > best_score[k]:
            best[k], best_score[k] = j, score
    reads = []
    pieces, plans = [], []
    for k, (i, b) in enumerate(items):
        if k not in best:
            reads.append([])
            continue
        j = best[k]
        _, v, x0, y0 = options[j]
        ln = lines[i]
        h, w = v.shape
        whole = Read(x0, y0, x0 + w, y0 + h, probs[j], crops[j], i)
        whole.odd = (b.touches_edge or b.clutter > 0.005 or max(w, h) < 0.45 * ln.height
                     or w > 1.6 * max(h, ln.height))
        reads.append([whole])
        # wide blobs may be touching digits (a confident read of a moderately wide one is kept)
        if not opt.split or w < 1.15 * width or (w < 1.6 * width and whole.probs.max() > 0.9):
            continue
        most = min(12, int(1.5 * w / width) + 1)
        xs = [0] + cut_columns(v, ln.height, most) + [w]
        segs = {}
        for s in range(len(xs)):
            for e in range(s + 1, len(xs)):
                if (s, e) == (0, len(xs) - 1) or xs[e] - xs[s] > 1.7 * width:
                    continue
                box = trim(v[:, xs[s]:xs[e]])
                if box is not None:
                    py0, py1, px0, px1 = box
                    segs[(s, e)] = len(pieces)
                    pieces.append((k, x0 + xs[s] + px0, y0 + py0, x0 + xs[s] + px1, y0 + py1,
                                   v[py0:py1, xs[s] + px0:xs[s] + px1]))
        if segs:
            plans.append((k, xs, segs))
    if pieces:
        pcrops = [normalize_digit(p[5], ink="white", match_stroke=opt.match_stroke) for p in pieces]
        pprobs = recognizer.predict(np.stack(pcrops))
        for k, xs, segs in plans:
            i, whole = items[k][0], reads[k][0]
            whole_score = best_score[k]
            path = best_path(len(xs), segs, pieces, pprobs, lines[i], width, whole_score)
            if path:
                reads[k] = [Read(*pieces[j][1:5], pprobs[j], pcrops[j], i) for j in path]
    return [r for rs in reads for r in rs]


def best_path(n: int, segs: dict, pieces: list, probs: np.ndarray, line: Line, width: float,
              whole_score: float):
    """Pieces (indices) of the best cut through n cut positions, or None if the whole blob wins."""
    score = np.full(n, -np.inf)
    back = [None] * n
    score[0] = 0.0
    for e in range(1, n):
        for s in range(e):
            k = segs.get((s, e))
            if k is None or score[s] == -np.inf:
                continue
            val = (score[s] + np.log(probs[k].max() + 1e-6) - SPLIT_COST
                   - shape_cost(pieces[k][5], line, width, piece=True))
            if val > score[e]:
                score[e], back[e] = val, (s, k)
    if score[-1] <= whole_score - SPLIT_COST:
        return None
    path, e = [], n - 1
    while e > 0:
        s, k = back[e]
        path.append(k)
        e = s
    return path[::-1]


def finish_lines(reads: list, labels: list, opt: Options):
    """Drop doubtful non-digits, sort each line left to right, renumber lines, make strings."""
    keep = [r for r in reads if not (r.odd and r.probs.max() < opt.reject)]
    by_line = {}
    for r in keep:
        by_line.setdefault(r.line, []).append(r)
    ordered, texts = [], []
    for n, i in enumerate(sorted(by_line)):
        ln = sorted(by_line[i], key=lambda r: (r.x0 + r.x1) / 2)
        for r in ln:
            r.line = n
        ordered.extend(ln)
        texts.append("".join(labels[int(r.probs.argmax())] for r in ln))
    return ordered, texts


def to_digits(image: np.ndarray, reads: list, to_input, labels: list, opt: Options) -> list:
    """Digits with their boxes mapped back to the input image's pixels, and their crops."""
    if not reads:
        return []
    corners = np.float32([[(r.x0, r.y0), (r.x1, r.y0), (r.x1, r.y1), (r.x0, r.y1)] for r in reads])
    corners = to_input(corners.reshape(-1, 2)).reshape(-1, 4, 2)
    h, w = image.shape[:2]
    out = []
    for r, c in zip(reads, corners):
        x0, y0 = np.clip(np.floor(c.min(0)), 0, [w - 1, h - 1]).astype(int)
        x1, y1 = np.clip(np.ceil(c.max(0)), [x0 + 1, y0 + 1], [w, h]).astype(int)
        k = int(r.probs.argmax())
        prob = float(r.probs[k])
        out.append(Digit((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), r.line, labels[k], prob,
                         prob < opt.low_confidence, r.crop28, image[y0:y1, x0:x1].copy()))
    return out


# --- drawing ------------------------------------------------------------------------------------

def annotate(image: np.ndarray, result: PageResult) -> np.ndarray:
    """A BGR copy of `image` with the sheet's outline (blue) and, for each digit, its box, its label
    above it and its probability in percent below it (green: confident; orange: low confidence)."""
    out = np.asarray(image)
    if out.ndim == 3 and out.shape[2] == 1:
        out = out[..., 0]
    out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR) if out.ndim == 2 else out[..., :3].copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 800))
    if result.page is not None:
        cv2.polylines(out, [np.round(result.page).astype(np.int32).reshape(-1, 1, 2)], True,
                      (255, 120, 0), thick, cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for d in result.digits:
        x, y, bw, bh = d.box
        color = (0, 140, 255) if d.low_confidence else (0, 160, 0)
        cv2.rectangle(out, (x, y), (x + bw - 1, y + bh - 1), color, thick)
        size = max(0.3, min(bh, 2 * bw, 0.08 * max(h, w)) / 40)         # label about half the box
        (tw, th), _ = cv2.getTextSize(d.label, font, size, thick + 1)
        ty = y - 3 if y - th - 3 >= 0 else min(h - 1, y + bh + th + 3)
        cv2.putText(out, d.label, (x + (bw - tw) // 2, ty), font, size, color, thick + 1, cv2.LINE_AA)
        pct = f"{min(99, int(d.prob * 100))}"
        small = 0.6 * size
        (pw, ph), _ = cv2.getTextSize(pct, font, small, thick)
        cv2.putText(out, pct, (x + (bw - pw) // 2, min(h - 1, y + bh + ph + 2)), font, small, color,
                    thick, cv2.LINE_AA)
    return out
