"""Read every handwritten digit on a photo of paper: page -> ink -> components -> digits -> lines.

This module holds the pipeline, the input, the sheet and the drawing; `ink.py` the threshold and
the blobs, `digits.py` the lines and the classification.

    image = load_image("sheet.jpg")
    result = read_page(image, Recognizer())
    result.lines          # ["1247673", "8952481"], lines top to bottom, digits left to right
    result.digits[0]      # Digit(box=(x, y, w, h), line=0, label="1", prob=0.99, ...)

The stages, as timed in `result.timings` (ms):

prepare   greyscale; photos with a side over `max_side` are shrunk first (bounded time and memory).
page      a bright sheet on a darker desk is found on a thumbnail (bright and smooth, where a desk
          is dark or textured), or a white sheet on a light table by its own edge, and later
          warped flat by a perspective transform; a photo that is already the page is used whole.
measure   the page is looked at on a 600 px view: its rules taken out (`rules.py`), the writing's
          height measured, its skew found (rules, or the lines of writing), a ruled grid's
          border found (the page is then warped so that the grid is square; a grid tilted a few
          degrees is looked for on the view turned by the skew), and whether the writing may
          run up or down the page.
ink       the page is viewed again, turned and at the scale where digits are `digit_height` px
          tall, so every window below follows the writing, never a fixed pixel size. The paper's
          brightness (a morphological closing that erases strokes but keeps shadows, smoothed
          but never brighter than the closing: it follows a shadow's edge) is divided out; a
          hysteresis threshold set from the paper's own noise keeps faint pixels that touch
          dark ones (thin pencil survives, paper grain does not). Rules and form boxes are taken
          out of the ink, strokes crossing them kept. Connected components keep their holes (an 8
          is not a 0). Marks on a dark background or amid clutter (a desk), page edges and specks
          are dropped; pieces of one digit are merged (a 5's detached bar, a broken 4).
lines     blobs are chained into lines left to right; a wide gap starts a new line (two columns)
          unless a table's rule runs through it; marks between two rules (a table's or sudoku's
          row, a ruled line) are one line; lines are read top to bottom, left block before right.
classify  every blob is normalised the MNIST way and classified in one batch; wide blobs are cut
          at thin joins or outline dips, and the cut whose pieces the classifier reads best (with
          a prior on digit width) wins; where the direction was doubtful, or the confident reads
          are mostly 1s, the four quarter turns are compared (print running up or down the
          page, which reads as rows of 1s: the page is read a quarter turn each way, the surer
          handwriting kept); a mark read near a decision is read again a pixel off each way
          and keeps the mean reading (`digits.steady_reads`); what is not a digit is set aside
          with its reason (`result.rejected`: the model's "none", a letter of a word, the page's
          print, doubtful shapes); boxes are mapped back to the input photo.
"""

import contextvars
import time
from copy import copy
from dataclasses import dataclass, field, fields

import cv2
import numpy as np

from edgedigits.errors import EdgeDigitsError

from .images import load_image, quiet_opencv  # noqa: F401 (load_image: the page's input)
from .digits import (CropBudget, TooManyCrops, classify_blobs, digit_columns, finish_lines, group_lines,
                     steady_reads, to_digits, to_marks)
from .ink import bright_region, downscale, find_blobs as ink_blobs
from .rules import find_grid, order_corners, quadrilateral, rectangle_like, rotation, writing_angle
from .tuning import TUNING

_DEFAULT = TUNING["page"]["options"]
T = TUNING["page"]


@dataclass
class Options:
    """Tuning knobs of `read_page` (all sizes are relative to the page, never pixels)."""
    max_side: int = _DEFAULT["max_side"]  # downscale photos whose long side is larger (speed, memory)
    digit_height: float = _DEFAULT["digit_height"]  # segment at the resolution where digits are about this tall (px)
    page: bool = _DEFAULT["page"]  # look for a sheet on a darker desk and flatten it
    split: bool = _DEFAULT["split"]  # try to cut wide blobs into touching digits
    low_confidence: float = _DEFAULT["low_confidence"]  # flag digits whose probability is below this
    reject: float = _DEFAULT["reject"]  # drop doubtful blobs (odd shape; any, with a "none" class) below this
    line_gap: float = _DEFAULT["line_gap"]  # a horizontal gap wider than this many digit heights starts a new line
    match_stroke: bool = _DEFAULT["match_stroke"]  # thicken/thin strokes to MNIST's width before classifying
    deskew: bool = _DEFAULT["deskew"]  # turn the page so that its writing runs left to right
    rules: bool = _DEFAULT["rules"]  # take rules, grids and boxes out of the ink; read tables by row
    keep_all: bool = _DEFAULT["keep_all"]  # set nothing aside: every candidate mark read as a digit
                                          # (to label the marks of a photo, `edgedigits harvest`)


@dataclass(frozen=True)
class Measured:
    """How `measure` found a page: the probe's zoom, the writing's height at it and the turn (in
    degrees) that reads it, for a gray image of `shape`. A video of one sheet (the camera loop)
    passes it back to `read_page` for the next frames: measuring is half of a frame's work, and
    the sheet's scale and direction do not change between two frames of one scene."""
    probe: float
    height: float
    turn: float
    shape: tuple


@dataclass
class PageResult:
    """What `read_page` found: digits in reading order, line strings, timings, the sheet."""
    digits: list
    lines: list
    timings: dict
    page: np.ndarray | None = None           # 4x2 corners of the sheet in input pixels, if found
    rejected: list = field(default_factory=list)   # Marks that are not handwritten digits
    turn: float = 0.0                        # degrees the page was turned to read it
    noise: bool = False                      # too many marks to be writing: read as noise (`NOISE`)
    measured: Measured | None = None         # the page's scale and turn, to pass to the next frame
                                             # (None where there is no writing or a grid was found)

    def as_dict(self) -> dict:
        digits = []
        for d in self.digits:
            entry = {"box": [int(v) for v in d.box], "line": d.line, "label": d.label,
                     "probability": round(float(d.prob), 4), "low_confidence": d.low_confidence}
            if d.cell is not None:
                entry["row"], entry["column"] = d.cell
            digits.append(entry)
        return {"lines": self.lines, "digits": digits, "turn": self.turn,
                "rejected": [{"box": [int(v) for v in m.box], "kind": m.kind} for m in self.rejected],
                **({"noise": True} if self.noise else {})}


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


# A view with more candidate marks than this is noise, not writing (the densest real page, a
# census form read at 2.25 MP, has 1232): reading stops there, in bounded time (`edgedigits fuzz`).
# So is one whose marks take more crops to classify (blobs, tail variants, the pieces of every
# cut; a second pass if the page is turned a quarter) than `crops` + `crops_per_mp` (the same form
# takes 2979 of its 6000): what it costs to read a page is mostly the crops it classifies.
# Counted per MP of the photo as read (after `max_side`), not of a view zoomed in on it.
NOISE = TUNING["page"]["NOISE"]
_photo_mp = contextvars.ContextVar("photo_mp", default=4.0)


def crop_budget() -> int:
    """How many crops reading the page may classify (`NOISE`)."""
    return int(NOISE["crops"] + NOISE["crops_per_mp"] * _photo_mp.get())


class _Noise(Exception):
    """Raised by `find_blobs` on a view that holds too many marks to be writing."""


def find_blobs(page: np.ndarray, height: float, grid=None):
    """`ink.find_blobs`, bounded: a view with more marks than `NOISE` allows raises _Noise, so
    that a frame of noise never reaches line grouping and classification. `grid`: the border of a
    printed grid in the view's pixels (paper, however dark: `ink.segment_ink`)."""
    found = ink_blobs(page, height, grid)
    if len(found[0]) > NOISE["blobs"] + NOISE["blobs_per_mp"] * _photo_mp.get():
        raise _Noise
    return found


def read_page(image: np.ndarray, recognizer, measured: Measured | None = None, **options) -> PageResult:
    """All the digits on a photo of paper (BGR or gray uint8), in reading order. See the module doc.
    A photo that holds too many marks to be writing comes back with no digits and `noise` set.
    `measured`: an earlier frame's `result.measured` (same scene, same size): the page's scale and
    turn are taken from it instead of measured again."""
    t0 = time.perf_counter()
    # Intel's IPP (x86 only) replaces some of OpenCV's filters and resizes and rounds unlike
    # OpenCV's own code, which arm64 and the browser's OpenCV.js run: off, so that a page reads the
    # same on every machine (docs/raspberry-pi.md). The switch holds for the calling thread only.
    cv2.ipp.setUseIPP(False)
    shape, side = np.shape(image)[:2], options.get("max_side", Options.max_side)
    mp = float(np.prod(shape)) / 1e6 * min(1.0, side / max(max(shape, default=1), 1)) ** 2 if len(shape) == 2 else 0.0
    token = _photo_mp.set(mp)
    try:
        return _read_page(image, recognizer, measured, **options)
    except (_Noise, TooManyCrops):
        return PageResult([], [], {"total": round((time.perf_counter() - t0) * 1000, 3)}, noise=True)
    finally:
        _photo_mp.reset(token)


def _read_page(image: np.ndarray, recognizer, measured, **options) -> PageResult:
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

    digits, texts, marks, turn, found = [], [], [], 0.0, None
    if min(gray.shape) >= 8:
        if measured is not None and measured.shape == gray.shape:
            probe, height, turn, doubtful, grid, seen = measured.probe, measured.height, measured.turn, False, None, None
        else:
            probe, height, turn, doubtful, grid, seen = measure(gray, corners, opt)
        clock.lap("measure")
        if height:
            zoom = probe * float(np.clip(opt.digit_height / height, 0.05, 3.0))
            zoom = min(zoom, max(1.0, opt.max_side / max(gray.shape)))   # small print: no bigger than max_side
            zoom = min(zoom, max(1.5, np.sqrt(1e6 / gray.size)))    # a small photo: a view of <= 1 MP or 1.5x
            if 0.8 <= zoom / probe <= 1.25:                 # the probe's scale is close enough
                zoom = probe
            if zoom == probe and not turn and grid is None and seen:   # what the probe saw will do
                page, to_gray_px, (blobs, ink, geom, rules, dropped) = seen
            else:
                page, to_gray_px = page_view(gray, corners, zoom, turn, grid)
                blobs, ink, geom, rules, dropped = find_blobs(page, opt.digit_height if opt.rules else 0.0,
                                                              in_view(grid, to_gray_px))
            clock.lap("ink")
            lines = group_lines(blobs, geom, opt.line_gap, rules)
            clock.lap("lines")
            most = crop_budget()
            budget = CropBudget(most)
            reads = classify_blobs(lines, ink, geom, recognizer, opt, budget)
            first = most - budget.left            # compare turns on what leaves room for a second pass
            # the direction is asked of the classifier where the marks' lines left it doubtful, or
            # where the reads are mostly 1s, as print on its side reads (a form whose printed
            # words stand in columns has neighbours beside and above alike)
            if reads and not doubtful:
                doubtful = mostly_ones(*sure_reads(np.stack([r.probs for r in reads]), recognizer.labels))
            looks = quarter_looks(reads, recognizer, (budget.left - first) // 4) if doubtful else None
            quarter = best_quarter(looks) if looks else 0
            if quarter:                                  # the writing runs another way: turn it
                turn = ((turn + 90 * quarter + 180) % 360) - 180
                to_gray_px, reads, dropped = read_view(gray, corners, zoom, turn, grid, opt, recognizer, budget)
            elif looks and sideways_print(looks):        # print up or down the page: read both ways
                turn, (to_gray_px, reads, dropped) = better_side(
                    gray, corners, zoom, turn, grid, opt, recognizer, budget, (to_gray_px, reads, dropped))
            steady_reads(reads, recognizer, opt, budget)
            reads, texts, rejected = finish_lines(reads, recognizer.labels, opt, recognizer.none_threshold)

            def to_input(points):        # page pixels -> input image pixels
                return cv2.perspectiveTransform(np.float32(points)[None], to_gray_px)[0] / scale

            digits = to_digits(image, reads, to_input, recognizer.labels, opt)
            marks = to_marks(image, rejected + [(b, kind) for b, kind in dropped if kind != "speck"], to_input)
            clock.lap("classify")
            if grid is None:          # a grid's corners move with the camera: measured every frame
                found = Measured(probe, height, turn, gray.shape)
    page_corners = corners / scale if corners is not None else None
    return PageResult(digits, texts, clock.total(), page_corners, marks, round(turn, 1), measured=found)


def in_view(grid, to_gray_px, grow: float = 0.25):
    """A grid's corners (gray's pixels) in the view's pixels, grown by `grow` of its size about
    its centre (a rule lost in a shadow leaves a row or two outside the grid found), or None."""
    if grid is None:
        return None
    corners = cv2.perspectiveTransform(np.float32(grid)[None], np.linalg.inv(to_gray_px))[0].astype(np.float64)
    centre = corners.mean(0)
    return centre + (corners - centre) * (1 + grow)


def measure(gray: np.ndarray, corners, opt):
    """(probe zoom, digit height at that zoom or 0 if there is no writing, turn in degrees,
    whether the direction is doubtful, the corners of a ruled grid in gray's pixels or None, and
    the probe's own view and blobs where it found no rules, to be used again at the same scale):
    the writing measured on a view of the page at most 600 px wide, its skew (see
    `rules.writing_angle`) and the border of its largest table or grid (`rules.find_grid`)."""
    probe = min(1.0, 600 / max(gray.shape))
    page, to_gray_px = page_view(gray, corners, probe)
    blobs, ink, geom, rules, dropped = find_blobs(page, probe_rules(page, opt))
    if probe < 1 and (not blobs or geom.height < 8):     # too small to measure: look closer
        probe = 1.0
        page, to_gray_px = page_view(gray, corners, probe)
        blobs, ink, geom, rules, dropped = find_blobs(page, probe_rules(page, opt))
    if not blobs or geom.height < 6 * probe:              # specks, not writing
        return probe, 0.0, 0.0, False, None, None
    turn, doubtful, grid = 0.0, False, None
    if opt.deskew:
        ink_mask = (ink.labels > 0).astype(np.uint8)
        if rules.mask is not None:                        # the rules taken out are the best guide
            ink_mask |= rules.mask
            grid = find_grid(rules, page.shape)
        turn, doubtful = writing_angle(blobs, ink_mask, geom.height, flattened=corners is not None)
        if grid is not None:                              # squared by its own rules
            grid = cv2.perspectiveTransform(grid[None], to_gray_px)[0]
            turn = 0.0
        if abs(turn) < 1.0:                               # not worth a resampling
            turn = 0.0
        elif grid is None and opt.rules and abs(turn) >= TURNED_GRID:   # a tilted grid: its rules once turned
            grid = turned_grid(gray, corners, probe, turn, opt)
            turn = 0.0 if grid is not None else turn
    # a page without rules, seen at the right scale, needs no second look
    seen = (page, to_gray_px, (blobs, ink, geom, rules, dropped)) if not rules else None
    return probe, geom.height, turn, doubtful, grid, seen


# a grid tilted this many degrees or more is looked for again on the page turned square to it
# (under it, its rules are found as they are, and a turned view's own border, the photo's edge
# against the fill, runs close enough to the view's axes to pass for a rule)
TURNED_GRID = T["TURNED_GRID"]


def turned_grid(gray: np.ndarray, corners, probe: float, turn: float, opt):
    """The border (gray's pixels) of the largest table or grid on the probe's view turned by
    `turn`, or None: rules are found along a view's rows and columns, within a few degrees, so a
    grid tilted more than that in the photo is found once the page is turned square to it."""
    page, to_gray_px = page_view(gray, corners, probe, turn)
    rules = find_blobs(page, probe_rules(page, opt))[3]
    grid = find_grid(rules, page.shape) if rules.mask is not None else None
    return cv2.perspectiveTransform(grid[None], to_gray_px)[0] if grid is not None else None


def probe_rules(page: np.ndarray, opt) -> float:
    """The digit height to find rules with before the writing is measured (rules would join all
    the writing of a ruled page into one component): a generous 1/40 of a page's long side,
    so that only lines longer than 1/16 of it count; none on small crops."""
    return max(page.shape) / 40 if opt.rules and max(page.shape) >= 300 else 0.0


def quarter_looks(reads: list, recognizer, most=None):
    """How the page's marks read as they are and turned by 90, 180 and 270 degrees (counter-
    clockwise; the MNIST normalisation commutes with quarter turns): for each turn, (confident
    digits: best digit class over 0.9, "none" left out; those of them that are not 1s; the mean
    "none" probability). None for fewer than 2 marks. Of more than `most` marks, an evenly
    spaced sample of at most `most` is looked at (bounded time)."""
    if len(reads) < 2 or (most is not None and most < 2):
        return None
    if most is not None and len(reads) > most:
        reads = reads[::-(-len(reads) // most)]
    crops = np.stack([r.crop28 for r in reads])
    digits = digit_columns(recognizer.labels)
    looks = []
    for k in range(4):
        probs = recognizer.predict(np.ascontiguousarray(np.rot90(crops, k, axes=(1, 2))))
        none = probs[:, ~digits].astype(np.float64).sum(1)
        looks.append((*sure_reads(probs, recognizer.labels), float(none.mean()) if none.size else 0.0))
    return looks


def sure_reads(probs: np.ndarray, labels: list) -> tuple:
    """(confident digits: best digit class over 0.9, "none" left out; those of them that are
    not 1s) among classifier outputs `probs` [N, classes]."""
    digits = digit_columns(labels)
    one = [label for label in labels if label.isdigit()].index("1")
    sure = probs[:, digits].max(1) > 0.9
    ones = probs[:, digits].argmax(1) == one
    return int(sure.sum()), int((sure & ~ones).sum())


# confident reads of which at most this share are other digits than 1s are "mostly 1s": a word of
# print on its side reads as a row of 1s
MOSTLY_ONES = T["MOSTLY_ONES"]


def mostly_ones(sure: int, not_ones: int) -> bool:
    """Whether confident reads (`sure_reads`: at least 4 of them) are mostly 1s, as print on its
    side reads."""
    return sure >= 4 and not_ones <= MOSTLY_ONES * sure


def best_quarter(looks: list) -> int:
    """How many quarter turns (0-3) make the page's marks read best (`quarter_looks`): the most
    confident digits. Turning must win clearly; ties stay as they are."""
    counts = [sure for sure, _, _ in looks]
    k = int(np.argmax(counts))
    return k if counts[k] > 1.3 * counts[0] + 2 else 0


def sideways_print(looks: list) -> bool:
    """Whether the page's marks are print running up or down the page (`quarter_looks`): as they
    are, the confident reads are mostly 1s (a printed word on its side reads as a row of 1s),
    and a quarter turn either way makes them far more surely "none" (the classifier knows upright
    print, and that a digit on its side is none): a form photographed at 90 degrees."""
    sure, not_ones, none = looks[0]
    return mostly_ones(sure, not_ones) and (looks[1][2] + looks[3][2]) / 2 > none + 0.15


def read_view(gray, corners, zoom: float, turn: float, grid, opt, recognizer, budget):
    """The page viewed at `zoom` and turned by `turn`, its marks found and classified:
    (homography view px -> gray px, reads, dropped marks)."""
    page, to_gray_px = page_view(gray, corners, zoom, turn, grid)
    blobs, ink, geom, rules, dropped = find_blobs(page, opt.digit_height if opt.rules else 0.0,
                                                  in_view(grid, to_gray_px))
    lines = group_lines(blobs, geom, opt.line_gap, rules)
    return to_gray_px, classify_blobs(lines, ink, geom, recognizer, opt, budget), dropped


def better_side(gray, corners, zoom, turn, grid, opt, recognizer, budget, as_is):
    """(turn, read_view's result) of the page turned a quarter either way, whichever keeps the
    surer digits (the sum of their probabilities, after `finish_lines` sets print and words
    aside): print runs up or down the page (`sideways_print`), and only its handwriting tells
    which way is up. The page `as_is` (turn unchanged) if the crop budget runs out first."""
    digit = np.array([label.isdigit() for label in recognizer.labels])
    tried = []
    for quarter in (1, 3):
        turned = ((turn + 90 * quarter + 180) % 360) - 180
        try:
            view = read_view(gray, corners, zoom, turned, grid, opt, recognizer, budget)
        except (_Noise, TooManyCrops):
            return turn, as_is
        # (copies: finish_lines renumbers the lines of what it keeps; the chosen reads are
        # finished again by the caller)
        kept = finish_lines([copy(r) for r in view[1]], recognizer.labels, opt, recognizer.none_threshold)[0]
        tried.append((sum(float(r.probs[digit].max()) for r in kept), turned, view))
    best = max(tried, key=lambda t: t[0])          # the first of equals: a quarter turn left
    return best[1], best[2]


# --- input --------------------------------------------------------------------------------------

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

def find_page(gray: np.ndarray):
    """Corners (4x2, gray's pixels) of a bright sheet clearly lit above a darker desk, else None.

    The largest bright and smooth region of a 320 px thumbnail (`ink.bright_region`) is
    approximated by a quadrilateral, which must cover 4-90% of the photo, fill it
    well, and be at least twice as bright as what lies outside it (so a shadow across a cropped
    sheet is not taken for a page edge). A white sheet on a light table (marble, a pale desk) is
    one bright region with the table; its edge, though, is a line where the thumbnail is not
    smooth, all around it: then the sheet is a smooth part of the thumbnail that its own edge
    encloses, if one makes such a quadrilateral, clear of the photo's border and brighter than
    what lies around it (`LIGHT_TABLE`); where the edge catches no light the margins run into
    the table's, so the smooth parts are then also cut apart by the thumbnail's edges.
    """
    found = bright_region(gray)
    if found is None or found[3] is None:
        return None
    t, s, smooth, region = found
    quad = sheet_quad(t, region, 0.5)
    for split in (False, True):               # its smooth margins, then those cut apart by edges
        if quad is None:
            parts = smooth_parts(t, smooth & ~sheet_edges(t) if split else smooth)
            quad = next((q for q in (sheet_quad(t, c, LIGHT_TABLE) for c in parts) if q is not None), None)
    return None if quad is None else order_corners(quad) / s


LIGHT_TABLE = T["LIGHT_TABLE"]   # a sheet on a light table: what lies around it is at most this bright


def sheet_quad(t: np.ndarray, contour: np.ndarray, contrast: float):
    """The quadrilateral (thumbnail pixels) of a bright region's `contour` if it can be a sheet:
    like a photographed rectangle, clear of the photo's border, 4-90% of the photo, filled by
    the region, and what lies outside it at most `contrast` times as bright; else None."""
    quad = quadrilateral(contour)
    if quad is None or not rectangle_like(quad) or on_border(quad, t.shape):
        return None
    area = cv2.contourArea(quad)
    if not 0.04 <= area / t.size <= 0.9 or cv2.contourArea(contour) < 0.85 * area:
        return None
    inside = np.zeros(t.shape, np.uint8)
    cv2.fillPoly(inside, [np.round(quad).astype(np.int32)], 255)
    if t[inside == 0].mean() > contrast * t[inside > 0].mean():
        return None
    return quad


def sheet_edges(t: np.ndarray) -> np.ndarray:
    """Where the thumbnail `t` has an edge (Canny with low thresholds, grown by a pixel): a white
    sheet's faint edge on white marble is not smooth only where the light catches it, so its
    smooth margins can run into the marble's through a gap; the edge closes most of them."""
    edges = cv2.Canny(t.astype(np.uint8), 10, 30)
    return cv2.dilate(edges, np.ones((3, 3), np.uint8)) > 0


def smooth_parts(t: np.ndarray, smooth: np.ndarray, most: int = 4) -> list:
    """The outer contours of the `most` largest smooth parts of the thumbnail `t` (4-connected,
    each at least 4% of it), largest first: a sheet's margins, held within its edge."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(smooth.astype(np.uint8), connectivity=4)
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = [int(i) + 1 for i in np.argsort(-areas, kind="stable") if areas[i] >= 0.04 * t.size][:most]
    contours = []
    for i in order:
        found, _ = cv2.findContours((labels == i).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        contours.append(max(found, key=cv2.contourArea))
    return contours


def on_border(quad: np.ndarray, shape: tuple, margin: float = 0.015) -> bool:
    """Whether two corners lie on the photo's border: the sheet runs out of the picture (or a
    shadow's edge was taken for its edge), so there is no whole sheet to flatten."""
    h, w = shape[:2]
    x, y = quad[:, 0], quad[:, 1]
    m = margin * max(h, w)
    return int(((x <= m) | (y <= m) | (x >= w - 1 - m) | (y >= h - 1 - m)).sum()) >= 2


def page_view(gray: np.ndarray, corners, zoom: float, turn: float = 0.0, grid=None):
    """The page at `zoom` times `gray`'s resolution: the photo warped so that a `grid` (4x2
    corners in gray's pixels) is a rectangle, else the sheet flattened to a rectangle if its
    corners are given, else the whole image; turned by `turn` degrees (counter-clockwise) so that
    its writing runs left to right. Returns (page, homography page px -> gray px)."""
    page, to_gray = grid_view(gray, grid, zoom) if grid is not None else flat_view(gray, corners, zoom)
    if not turn:
        return page, to_gray
    m, size = rotation(page.shape, turn)
    paper = float(np.median(page[::4, ::4]))          # corners outside the photo are blank paper
    turned = cv2.warpAffine(page, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=paper)
    return turned, to_gray @ np.linalg.inv(np.vstack([m, [0, 0, 1]]))


def grid_view(gray: np.ndarray, grid: np.ndarray, zoom: float, margin: float = 0.6):
    """The photo warped by the homography that makes `grid` a rectangle at `zoom` (the plane of
    the sheet seen square on), kept to `margin` of the grid's size around it (what lies around a
    table on the same sheet: a title, a time written under a sudoku)."""
    if zoom < 0.75:                  # shrink first (anti-aliased), then warp
        h, w = gray.shape
        small = downscale(gray, (max(1, round(w * zoom)), max(1, round(h * zoom))))
        shrink = np.diag([w / small.shape[1], h / small.shape[0], 1.0])
        page, to_small = grid_view(small, grid / np.diag(shrink)[:2], 1.0, margin)
        return page, shrink @ to_small
    tl, tr, br, bl = grid.astype(np.float32)
    width = zoom * (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    height = zoom * (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    square = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    to_page = cv2.getPerspectiveTransform(grid.astype(np.float32), square)
    h, w = gray.shape
    photo = cv2.perspectiveTransform(np.float32([[[0, 0], [w, 0], [w, h], [0, h]]]), to_page)[0]
    x0, y0 = np.maximum(photo.min(0), [-margin * width, -margin * height])
    x1, y1 = np.minimum(photo.max(0), [(1 + margin) * width, (1 + margin) * height])
    to_page = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ to_page
    paper = float(np.median(gray[::8, ::8]))
    page = warp(gray, to_page, (max(1, int(x1 - x0)), max(1, int(y1 - y0))), border=paper)
    return page, np.linalg.inv(to_page)


def flat_view(gray: np.ndarray, corners, zoom: float):
    """`page_view` before turning: (page, homography page px -> gray px)."""
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
        page, to_small = flat_view(small, corners / np.diag(shrink)[:2], 1.0)
        return page, shrink @ to_small
    tl, tr, br, bl = corners
    width = max(1, round(zoom * (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2))
    height = max(1, round(zoom * (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2))
    dst = np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    to_page = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    page = warp(gray, to_page, (width, height))
    return page, np.linalg.inv(to_page)


def warp(gray: np.ndarray, to_page: np.ndarray, size: tuple, border: float | None = None) -> np.ndarray:
    """cv2.warpPerspective(gray, to_page, size, INTER_LINEAR) with the edge replicated, or `border`
    outside the photo: the same on every machine. OpenCV's own warp (and its remap on arm64)
    computes points and weights with the platform's SIMD and fused multiply-adds, and the grey
    levels differ. Here the points are computed in float32 (one rounding per operation) from the
    inverse homography rounded to float32 (its last bits depend on the machine's LAPACK), fixed
    to 1/32 px as OpenCV does, and interpolated in integers with OpenCV's bilinear weights."""
    m = np.linalg.inv(to_page).astype(np.float32)                           # page px -> gray px
    x, y = np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32)
    z = np.add.outer(m[2, 1] * y + m[2, 2], m[2, 0] * x)
    fixed = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in (0, 1):
            a = np.add.outer(m[i, 1] * y + m[i, 2], m[i, 0] * x)
            np.divide(a, z, out=a)              # far outside (or 0/0): the border, alike everywhere
            np.fmin(np.fmax(a, -30000, out=a), 30000, out=a)
            a *= 32
            fixed.append(np.rint(a, out=a).astype(np.int32))
    # a frame (the edge or `border`; 1 px before, 2 after) holds every point outside the photo
    framed = cv2.copyMakeBorder(gray, 1, 2, 1, 2, cv2.BORDER_REPLICATE if border is None else cv2.BORDER_CONSTANT,
                                value=0 if border is None else round(border)).ravel()
    h, w = gray.shape[0] + 3, gray.shape[1] + 3
    (x0, fx), (y0, fy) = [(np.clip((f >> 5) + 1, 0, n - 2), (f & 31).astype(np.uint16))
                          for f, n in zip(fixed, (w, h))]
    fx[(fixed[0] >> 5) + 1 != x0] = 0           # clipped to the frame: its pixels alone
    fy[(fixed[1] >> 5) + 1 != y0] = 0
    at = y0 * w + x0
    rows = []
    for r in (0, w):                               # OpenCV's bilinear weights (1/32 steps), in integers
        left, right = framed.take(at + r).astype(np.uint16), framed.take(at + r + 1).astype(np.uint16)
        rows.append(left * (32 - fx) + right * fx)
    out = rows[0].astype(np.int32) * (32 - fy) + rows[1].astype(np.int32) * fy
    out += 512
    out >>= 10
    return out.astype(np.uint8)


# --- drawing ------------------------------------------------------------------------------------

def annotate(image: np.ndarray, result: PageResult) -> np.ndarray:
    """A BGR copy of `image` with the sheet's outline (blue) and, for each digit, its box, its label
    above it and its probability in percent below it (green: confident; orange: low confidence).
    Marks set aside as not handwritten digits are drawn faintly (a thin grey-violet box and the
    reason in small type: none, printed, doubtful, ...), so a user sees what was ignored."""
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
    if result.rejected:
        faint = out.copy()
        for m in result.rejected:
            x, y, bw, bh = m.box
            cv2.rectangle(faint, (x, y), (x + bw - 1, y + bh - 1), (160, 90, 160), thick)
            size = max(0.3, min(bh, 0.05 * max(h, w)) / 60)
            cv2.putText(faint, m.kind, (x, max(8, y - 2)), font, size, (160, 90, 160), 1, cv2.LINE_AA)
        out = cv2.addWeighted(faint, 0.55, out, 0.45, 0)
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
