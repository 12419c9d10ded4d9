"""Rules, grids and the sheet's writing direction.

Ruled and squared paper, table rules, sudoku grids and form boxes are long straight lines; digits
are short strokes. Three steps use that:

writing_angle   the skew of the page, from its long straight lines (Hough) or else from the
                angles between neighbouring marks (the "docstrum": in a line of writing or a
                row of a grid, a mark's nearest neighbours lie beside it), and whether the
                writing may run up or down the page (then `page.best_quarter` asks the
                classifier which quarter turn reads best).
find_rules      the long horizontal and vertical lines of the ink mask (a morphological opening
                with a kernel longer than any digit stroke), taken out of the mask; a digit stroke
                that crosses a rule is put back (the rule's pixels with ink just above and below).
Rules.between   the band between two horizontal rules that holds a mark (its row) and the cell
                between two vertical rules (its column): a digit in a table or a sudoku belongs to
                its cell's row, however wide the gaps between the digits of that row.
"""

from dataclasses import dataclass, field

import cv2
import numpy as np

RULE_LENGTH = 2.5      # a rule is a straight run longer than this many digit heights
MIN_RULES = 3          # fewer long lines than this are a sheet's edge or a stroke, not ruling


# --- the writing direction ------------------------------------------------------------------------

def neighbour_angles(points: np.ndarray, k: int = 2):
    """Angles (degrees, 0..180) and weights of the lines from each point to its k nearest ones."""
    d = points[:, None, :] - points[None, :, :]
    dist = np.hypot(d[..., 0], d[..., 1])
    np.fill_diagonal(dist, np.inf)
    near = np.argsort(dist, axis=1)[:, :k]
    v = points[near] - points[:, None, :]
    angles = np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 180
    return angles.ravel(), np.ones(angles.size)


def peak(angles: np.ndarray, weights: np.ndarray, period: float) -> tuple:
    """The strongest direction of a circular histogram (1-degree bins, smoothed), and its weight."""
    bins = int(period)
    hist = np.bincount(np.round(angles).astype(int) % bins, weights=weights, minlength=bins)
    smooth = sum(np.roll(hist, s) * w for s, w in ((-2, 1), (-1, 2), (0, 3), (1, 2), (2, 1)))
    top = int(np.argmax(smooth))
    # sub-bin: the weighted mean of the bins around the top
    offsets = np.arange(-2, 3)
    values = hist[(top + offsets) % bins]
    centre = top + (offsets * values).sum() / max(values.sum(), 1e-9)
    return float(centre), smooth


def line_angles(mask: np.ndarray, min_length: float):
    """Angles (degrees, 0..180) and lengths of the long straight segments of a binary mask."""
    segments = cv2.HoughLinesP(mask, 1, np.pi / 360, threshold=int(min_length / 2),
                               minLineLength=min_length, maxLineGap=max(2, min_length / 20))
    if segments is None:
        return np.zeros(0), np.zeros(0)
    x0, y0, x1, y1 = segments[:, 0].T.astype(np.float64)
    return np.degrees(np.arctan2(y1 - y0, x1 - x0)) % 180, np.hypot(x1 - x0, y1 - y0)


def writing_angle(blobs: list, mask: np.ndarray, height: float, flattened: bool = False) -> tuple:
    """(skew in degrees, doubtful): rotating the page by -skew puts its rules and lines of writing
    square to the page; `doubtful` says the writing may then run up or down the page, or upside
    down (a sheet photographed at 60 or 90 degrees), for the classifier to decide.

    The skew comes from the long straight lines when the page has some (rules, grid, table,
    the sheet's edge), else from the neighbour angles of the marks folded modulo 90 (the
    rows and columns of writing agree there). A sheet already `flattened` (its edges found) is
    square to the view: only rules may skew it. A steep skew, or marks whose nearest neighbours
    lie above them as often as beside them, leave the direction doubtful.
    """
    marks = [b for b in blobs if b.h <= 2 * height and max(b.w, b.h) >= 0.3 * height]
    if len(marks) > 1500:                    # biggest first: writing, not specks
        marks = sorted(marks, key=lambda b: -b.area)[:1500]
    rules, lengths = line_angles(mask, 4 * height)
    angles = np.zeros(0)
    if len(marks) >= 3:
        points = np.array([((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2) for b in marks], np.float64)
        angles, weights = neighbour_angles(points)
    if lengths.size >= 3:
        skew, _ = peak(rules % 90, lengths, 90)
    elif angles.size >= 40 and not flattened:          # 20 marks: fewer give a noisy angle
        skew, _ = peak(angles % 90, weights, 90)
    elif angles.size >= 6:
        skew = 0.0
    else:
        return 0.0, False
    skew = ((skew + 45) % 90) - 45
    turned = (angles - skew) % 180
    beside = np.count_nonzero(np.minimum(turned, 180 - turned) < 20)
    above = np.count_nonzero(np.abs(turned - 90) < 20)
    return float(skew), bool(abs(skew) > 20 or above >= beside)


def rotation(shape: tuple, degrees: float):
    """The 2x3 affine rotating an image of `shape` by `degrees` (counter-clockwise, OpenCV's sense)
    about its centre, and the (w, h) of a canvas that holds all of the rotated image."""
    h, w = shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return m, (nw, nh)


# --- rules and grids ------------------------------------------------------------------------------

@dataclass
class Rule:
    """A straight line on the page: horizontal (at y from x0 to x1) or vertical (at x, y0..y1)."""
    at: float
    start: int
    end: int


@dataclass
class Rules:
    """The page's horizontal and vertical rules, and the ink they covered (a mask)."""
    horizontal: list = field(default_factory=list)
    vertical: list = field(default_factory=list)
    mask: np.ndarray | None = None

    def __bool__(self):
        return bool(self.horizontal or self.vertical)

    @staticmethod
    def between(rules: list, along: float, across: float) -> tuple | None:
        """The nearest of `rules` on either side of `across`, among those that span `along`
        (for horizontal rules: along = x, across = y), or None."""
        spanning = [r.at for r in rules if r.start <= along <= r.end]
        before = [a for a in spanning if a < across]
        after = [a for a in spanning if a > across]
        return (max(before), min(after)) if before and after else None


def runs(mask: np.ndarray, length: int, horizontal: bool) -> np.ndarray:
    """Pixels of `mask` on straight runs at least `length` long (slightly tilted ones included:
    the mask is thickened across the run before the opening, then cut back to the ink)."""
    across = (1, 3) if horizontal else (3, 1)                  # kernel sizes are (w, h)
    along = (length, 1) if horizontal else (1, length)
    thick = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_RECT, across))
    opened = cv2.morphologyEx(thick, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, along))
    return cv2.bitwise_and(opened, mask)


def rule_list(lines: np.ndarray, length: int, horizontal: bool) -> list:
    """One Rule per connected run of line pixels at least `length` long."""
    n, _, stats, centroids = cv2.connectedComponentsWithStats(lines, connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h = stats[i, :4]
        if (w if horizontal else h) >= length:
            at = centroids[i, 1] if horizontal else centroids[i, 0]
            out.append(Rule(float(at), int(x if horizontal else y), int(x + w if horizontal else y + h)))
    return out


def joined(rules: list, tolerance: float) -> list:
    """Pieces of one rule (cut where a digit crossed it, or split by a thick rule's two edges)
    joined into one: rules less than `tolerance` apart across their length become one, at their
    length-weighted position, spanning all of them."""
    out = []
    for r in sorted(rules, key=lambda r: r.at):
        if out and r.at - out[-1].at < tolerance:
            last = out[-1]
            a, b = last.end - last.start, r.end - r.start
            out[-1] = Rule((last.at * a + r.at * b) / max(1, a + b), min(last.start, r.start), max(last.end, r.end))
        else:
            out.append(r)
    return out


def find_rules(mask: np.ndarray, height: float) -> tuple:
    """(mask without its rules, Rules). Digit strokes crossing a rule are kept: a rule pixel with
    ink on both sides of it across the rule (within the rule's width) is a stroke's pixel."""
    length = max(8, int(RULE_LENGTH * height))
    if min(mask.shape) < length:
        return mask, Rules()
    hor = runs(mask, length, True)
    ver = runs(mask, length, False)
    lines = cv2.bitwise_or(hor, ver)
    if not lines.any():
        return mask, Rules()
    h, w = mask.shape
    inner = lambda r, side: 2 < r.at < side - 3                # the page's own border is no rule
    rules = Rules(joined([r for r in rule_list(hor, length, True) if inner(r, h)], height / 4),
                  joined([r for r in rule_list(ver, length, False) if inner(r, w)], height / 4), lines)
    if len(rules.horizontal) + len(rules.vertical) < MIN_RULES:  # a sheet edge, a long stroke
        return mask, Rules()
    total = sum(r.end - r.start for r in rules.horizontal + rules.vertical)
    width = cv2.countNonZero(lines) / max(1, total)          # rule pixels per unit of length
    rest = cv2.bitwise_and(mask, cv2.bitwise_not(lines))
    k = int(np.ceil(width)) + 4                          # the run and its 1 px margins
    bridge_v = cv2.morphologyEx(rest, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, k)))
    bridge_h = cv2.morphologyEx(rest, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    keep = cv2.bitwise_or(cv2.bitwise_and(bridge_v, hor), cv2.bitwise_and(bridge_h, ver))
    clean = cv2.bitwise_or(rest, keep)
    return clean, rules

