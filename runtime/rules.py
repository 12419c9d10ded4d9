"""Rules, grids and the sheet's writing direction.

Ruled and squared paper, table rules, sudoku grids and form boxes are long straight lines; digits
are short strokes. These steps use that:

writing_angle   the skew of the page, from its long straight lines (Hough) or else from its
                lines of writing (a projection profile), and whether the writing may run up or
                down the page (the angles between neighbouring marks, the "docstrum", say so;
                then `page.best_quarter` asks the classifier which quarter turn reads best,
                and `page.sideways_print` whether print runs up or down the page).
find_rules      the long horizontal and vertical lines of the ink mask (a morphological opening
                with a kernel longer than any digit stroke), taken out of the mask; a digit stroke
                that crosses a rule is put back (the rule's pixels with ink just above and below).
find_grid       the outer border of the largest ruled quadrilateral (a sudoku, a table): the
                page is warped so that it is a rectangle, which squares a grid photographed at
                an angle (its rules then run straight along the view's rows and columns).
find_boxes      the square boxes of a form, drawn around each digit, taken out so the digit
                inside stands alone.
Rules.between   the band between two horizontal rules that holds a mark (its row) and the cell
                between two vertical rules (its column): a digit in a table or a sudoku belongs to
                its cell's row, however wide the gaps between the digits of that row.
"""

from dataclasses import dataclass, field

import cv2
import numpy as np

from .tuning import TUNING

T = TUNING["rules"]

RULE_LENGTH = T["RULE_LENGTH"]  # a rule is a straight run longer than this many digit heights
GRID_TILT = T["GRID_TILT"]  # a grid's rules run within this slope of their median (a sheet's edge may not)
FEW_MARKS_TILT = T["FEW_MARKS_TILT"]  # a few marks in a line (under 12) tilted this much (degrees) are turned
MIN_RULES = T["MIN_RULES"]  # fewer long lines than this are a sheet's edge or a stroke, not ruling


# --- the writing direction ------------------------------------------------------------------------

def neighbour_angles(points: np.ndarray, k: int = 2) -> np.ndarray:
    """Angles (degrees, 0..180) of the lines from each point to its k nearest ones."""
    d = points[:, None, :] - points[None, :, :]
    dist = np.hypot(d[..., 0], d[..., 1])
    np.fill_diagonal(dist, np.inf)
    near = np.argpartition(dist, k, axis=1)[:, :k] if len(points) > k else np.argsort(dist, axis=1)[:, :k]
    v = points[near] - points[:, None, :]
    angles = np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 180
    return angles.ravel()


def peak(angles: np.ndarray, weights: np.ndarray, period: float) -> float:
    """The strongest direction of a circular histogram (1-degree bins, smoothed)."""
    bins = int(period)
    hist = np.bincount(np.round(angles).astype(int) % bins, weights=weights, minlength=bins)
    smooth = sum(np.roll(hist, s) * w for s, w in ((-2, 1), (-1, 2), (0, 3), (1, 2), (2, 1)))
    top = int(np.argmax(smooth))
    # sub-bin: the weighted mean of the bins around the top
    offsets = np.arange(-2, 3)
    values = hist[(top + offsets) % bins]
    centre = top + (offsets * values).sum() / max(values.sum(), 1e-9)
    return float(centre)


def profile_skew(points: np.ndarray, height: float, limit: float = 45.0) -> float:
    """The angle of the lines of writing through `points` (mark centres): the direction along
    which their projection piles up in the fewest, fullest bins a third of a digit high (the
    projection-profile method; robust to digits jumping up and down within a line)."""
    best, best_score = 0.0, -1.0
    for coarse in (True, False):
        grid = np.arange(-limit, limit + 0.1, 1.0) if coarse else np.arange(best - 1, best + 1.01, 0.1)
        for a in grid:
            t = np.radians(a)
            across = points[:, 1] * np.cos(t) - points[:, 0] * np.sin(t)
            counts = np.bincount(((across - across.min()) / max(height / 3, 1.0)).astype(int))
            score = float((counts.astype(np.float64) ** 2).sum())
            if score > best_score + 1e-9 or (abs(score - best_score) <= 1e-9 and abs(a) < abs(best)):
                best, best_score = float(a), score
    return best


def neighbour_skew(angles: np.ndarray) -> float:
    """The skew (degrees) of a few marks in a line (too few for `profile_skew`): the direction
    their nearest neighbours (`neighbour_angles`) share, where most of them share it within 15
    degrees and it is a clear tilt (`FEW_MARKS_TILT` or more), else 0: a few digits written
    upright wave by a few degrees."""
    top = peak(angles, np.ones(len(angles)), 180)
    near = np.abs(((angles - top + 90) % 180) - 90) < 15
    skew = ((top + 90) % 180) - 90
    return float(skew) if near.mean() >= 0.5 and abs(skew) >= FEW_MARKS_TILT else 0.0


def line_angles(mask: np.ndarray, min_length: float):
    """Angles (degrees, 0..180) and lengths of the long straight segments of a binary mask.

    Hough's probabilistic transform is run on the mask shrunk to at most 400 px (a pixel there
    pools a 2x2 block or more), where it costs a few milliseconds instead of tens."""
    scale = min(1.0, 400 / max(mask.shape))
    if scale < 1:
        size = (max(1, round(mask.shape[1] * scale)), max(1, round(mask.shape[0] * scale)))
        mask = (cv2.resize(mask, size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
        min_length *= scale
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
    the sheet's edge), else from the lines of writing (`profile_skew`, with 12 marks or more;
    with fewer, the direction their neighbours share, `neighbour_skew`, or with 6 or more their
    profile, either only for a clear tilt of `FEW_MARKS_TILT`). A sheet already `flattened` (its
    edges found) is square to the view: only rules may skew it. A
    steep skew, or marks whose nearest neighbours (`neighbour_angles`) lie above them as often as
    beside them, leave the direction doubtful.
    """
    marks = [b for b in blobs if b.h <= 2 * height and max(b.w, b.h) >= 0.3 * height]
    if len(marks) > 400:                     # biggest first: writing, not specks (and O(n^2) below)
        marks = sorted(marks, key=lambda b: -b.area)[:400]
    rules, lengths = line_angles(mask, 4 * height)
    angles = np.zeros(0)
    if len(marks) >= 3:
        points = np.array([((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2) for b in marks], np.float64)
        angles = neighbour_angles(points)
    if lengths.size >= 3:
        skew = peak(rules % 90, lengths, 90)
        near = np.abs(((rules - skew + 45) % 90) - 45) < 3     # the segments that agree: refine
        skew += float(np.average(((rules[near] - skew + 45) % 90) - 45, weights=lengths[near]))
    elif len(marks) >= 12 and not flattened:
        skew = profile_skew(points, height)
    elif angles.size >= 6 and not flattened:             # a few marks: a line's tilt, if clear
        skew = neighbour_skew(angles)
        if not skew and len(marks) >= 6:
            skew = profile_skew(points, height)
            skew = skew if abs(skew) >= FEW_MARKS_TILT else 0.0
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


def rectangle_like(quad: np.ndarray, slack: float = 35.0) -> bool:
    """Whether four corners can be a photographed rectangle: every corner's angle within `slack`
    degrees of square (a shadow's edge across a sheet makes a sliver, not a sheet)."""
    q = quad.astype(np.float64)
    for i in range(4):
        a, b = q[i - 1] - q[i], q[(i + 1) % 4] - q[i]
        cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-9)
        if abs(np.degrees(np.arccos(np.clip(cos, -1, 1))) - 90) > slack:
            return False
    return True


def quadrilateral(contour: np.ndarray):
    """The contour's convex hull simplified to 4 corners (the loosest tolerance that gives 4),
    or None."""
    hull = cv2.convexHull(contour)
    for eps in (0.02, 0.03, 0.04, 0.06, 0.08, 0.1):
        approx = cv2.approxPolyDP(hull, eps * cv2.arcLength(hull, True), True)
        if len(approx) == 4:
            return approx.reshape(4, 2).astype(np.float32)
        if len(approx) < 4:
            return None
    return None


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Corners as top-left, top-right, bottom-right, bottom-left."""
    pts = pts.reshape(4, 2).astype(np.float32)
    c = pts.mean(0)
    angles = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(angles)]                      # clockwise from the left (image y down)
    start = np.argmin(pts.sum(1))                      # top-left: smallest x + y
    return np.roll(pts, -start, axis=0)


def find_grid(rules, shape: tuple, min_share: float = 0.05):
    """Corners (4x2: top-left, top-right, bottom-right, bottom-left) of a table or grid: where the
    outermost of its long thin horizontal and vertical rules meet (each rule's own tilt is
    followed, so a grid photographed at an angle gives its true quadrilateral), or None. At least
    three rules each way, a shape like a photographed rectangle covering `min_share` of the view."""
    def grid_rules(found):
        longest = max((r.end - r.start for r in found), default=0)
        found = [r for r in found if r.end - r.start >= 0.5 * longest]
        tilt = float(np.median([r.slope for r in found])) if found else 0.0
        return sorted((r for r in found if abs(r.slope - tilt) <= GRID_TILT), key=lambda r: r.at)

    def cross(r, o):
        return o.start - 2 <= r.at <= o.end + 2 and r.start - 2 <= o.at <= r.end + 2

    def crossed(found, others):              # rules that cross at least three of the others
        return [r for r in found if sum(cross(r, o) for o in others) >= 3]

    hor, ver = thin(rules.horizontal), thin(rules.vertical)
    hor, ver = crossed(hor, ver), crossed(ver, hor)
    hor, ver = crossed(hor, ver), crossed(ver, hor)
    hor, ver = largest_table(hor, ver, cross)
    hor, ver = grid_rules(hor), grid_rules(ver)
    if len(hor) < 3 or len(ver) < 3:
        return None
    corners = [crossing(h, v) for h, v in ((hor[0], ver[0]), (hor[0], ver[-1]), (hor[-1], ver[-1]),
                                           (hor[-1], ver[0]))]
    quad = np.float32(corners)
    if not np.isfinite(quad).all() or not rectangle_like(quad, 25):
        return None
    if cv2.contourArea(quad) < min_share * shape[0] * shape[1]:
        return None
    return quad


def largest_table(hor: list, ver: list, cross) -> tuple:
    """The horizontal and vertical rules of the biggest table: rules joined by crossing each other
    form one table (two grids side by side, a sudoku and yesterday's solution, are two)."""
    seen_h, seen_v, best, best_size = set(), set(), ([], []), -1.0
    for start in range(len(hor)):
        if start in seen_h:
            continue
        todo, hs, vs = [("h", start)], {start}, set()
        while todo:
            kind, k = todo.pop()
            if kind == "h":
                new = [j for j, v in enumerate(ver) if j not in vs and cross(hor[k], v)]
                vs.update(new)
                todo += [("v", j) for j in new]
            else:
                new = [j for j, h in enumerate(hor) if j not in hs and cross(h, ver[k])]
                hs.update(new)
                todo += [("h", j) for j in new]
        seen_h |= hs
        seen_v |= vs
        size = sum(hor[j].end - hor[j].start for j in hs) * sum(ver[j].end - ver[j].start for j in vs)
        if size > best_size:
            best, best_size = ([hor[j] for j in hs], [ver[j] for j in vs]), size
    return best


def crossing(h: "Rule", v: "Rule") -> tuple:
    """Where a horizontal and a vertical rule (as straight lines) cross."""
    # y = h.at + h.slope * (x - hm);  x = v.at + v.slope * (y - vm)
    hm, vm = (h.start + h.end) / 2, (v.start + v.end) / 2
    denom = 1 - h.slope * v.slope
    if abs(denom) < 1e-6:
        return (np.nan, np.nan)
    x = (v.at + v.slope * (h.at - h.slope * hm - vm)) / denom
    return (float(x), float(h.at + h.slope * (x - hm)))


# --- rules and grids ------------------------------------------------------------------------------

@dataclass
class Rule:
    """A straight line on the page: horizontal (at y from x0 to x1) or vertical (at x, y0..y1);
    `slope` is its tilt (dy/dx, or dx/dy for a vertical one) and `width` its thickness (px)."""
    at: float
    start: int
    end: int
    slope: float = 0.0
    width: float = 1.0


@dataclass
class Rules:
    """The page's horizontal and vertical rules, and the ink they covered (a mask)."""
    horizontal: list = field(default_factory=list)
    vertical: list = field(default_factory=list)
    mask: np.ndarray | None = None
    boxes: list = field(default_factory=list)       # (x0, y0, x1, y1) of form boxes taken out
    bridge: int = 0             # the gap (px) across a rule that a stroke crossing it bridges

    def __bool__(self):
        return bool(self.horizontal or self.vertical or self.boxes)

    @property
    def rows(self) -> list:
        """The horizontal rules, each spanning its table (see `spread`): what bounds a row."""
        return spread(self.horizontal)

    @property
    def columns(self) -> list:
        """The vertical rules, each spanning its table: what bounds a column."""
        return spread(self.vertical)

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
    across = (1, 5) if horizontal else (5, 1)                  # kernel sizes are (w, h)
    along = (length, 1) if horizontal else (1, length)
    thick = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_RECT, across))
    opened = cv2.morphologyEx(thick, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, along))
    return cv2.bitwise_and(opened, mask)


def rule_list(lines: np.ndarray, length: int, horizontal: bool) -> list:
    """One Rule per connected run of line pixels at least `length` long."""
    n, labels, stats, centroids = cv2.connectedComponentsWithStatsWithAlgorithm(lines, 8, cv2.CV_32S, cv2.CCL_GRANA)
    out = []
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        run = w if horizontal else h
        if run >= length:
            m = cv2.moments((labels[y:y + h, x:x + w] == i).astype(np.uint8), binaryImage=True)
            slope = m["mu11"] / max(m["mu20"] if horizontal else m["mu02"], 1e-9)
            at = centroids[i, 1] if horizontal else centroids[i, 0]
            out.append(Rule(float(at), int(x if horizontal else y), int(x + run if horizontal else y + run),
                            float(slope), float(area) / run))
    return out


def thin(rules: list) -> list:
    """The rules no thicker than 2.5 times the typical one (a shadow's or a desk's edge is a band)."""
    if not rules:
        return []
    typical = float(np.median([r.width for r in rules]))
    return [r for r in rules if r.width <= 2.5 * typical]


def spread(rules: list) -> list:
    """Rules of one table share its extent: a rule found only in pieces (a perspective tilt broke
    it) is given the span of the longer thin rules it overlaps by half or more."""
    out, lines = [], thin(rules)
    for r in rules:
        start, end = r.start, r.end
        for o in lines:
            overlap = min(r.end, o.end) - max(r.start, o.start)
            if o.end - o.start > end - start and overlap >= 0.5 * (r.end - r.start):
                start, end = min(start, o.start), max(end, o.end)
        out.append(Rule(r.at, start, end, r.slope, r.width))
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
            longer = last if a >= b else r
            out[-1] = Rule((last.at * a + r.at * b) / max(1, a + b), min(last.start, r.start),
                           max(last.end, r.end), longer.slope, longer.width)
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
    k = int(np.ceil(width)) + 6                          # the run and its 2 px margins
    rules.bridge = k
    bridge_v = cv2.morphologyEx(rest, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, k)))
    bridge_h = cv2.morphologyEx(rest, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    keep = cv2.bitwise_or(cv2.bitwise_and(bridge_v, hor), cv2.bitwise_and(bridge_h, ver))
    clean = cv2.bitwise_or(rest, keep)
    return clean, rules



BOX_SIZE = tuple(T["BOX_SIZE"])  # a form box is this many digit heights wide and tall


def find_boxes(mask: np.ndarray, height: float) -> tuple:
    """(mask without its boxes, [(x0, y0, x1, y1)]): the square outlines drawn around the digits
    of a form (each side of its bounding box inked along 85% of its length) are taken out of
    the ink, so that the digit inside stands alone; a crossed-out box keeps its cross."""
    n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_GRANA)
    lo, hi = BOX_SIZE[0] * height, BOX_SIZE[1] * height
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    sized = (w >= lo) & (w <= hi) & (h >= lo) & (h <= hi) & (w >= 0.6 * h) & (w <= 1.6 * h)
    out, boxes = mask.copy(), []
    for i in np.flatnonzero(sized[1:]) + 1:
        x, y, w, h, _ = stats[i]
        own = labels[y:y + h, x:x + w] == i
        t = max(2, int(round(0.12 * min(w, h))))
        sides = (own[:t].any(0), own[-t:].any(0), own[:, :t].any(1), own[:, -t:].any(1))
        if min(side.mean() for side in sides) < 0.85:
            continue
        frame = np.zeros_like(own)
        frame[:t], frame[-t:], frame[:, :t], frame[:, -t:] = True, True, True, True
        out[y:y + h, x:x + w][own & frame] = 0
        boxes.append((int(x), int(y), int(x + w), int(y + h)))
    return out, boxes
