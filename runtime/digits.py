"""From blobs to digits: lines in reading order, one classifier batch per page, the cuts of
touching digits chosen by the classifier's confidence, and the `Digit`s mapped back to the photo.

Used by `page.read_page`; see its module doc for how the stages fit together. `opt` below is
its `page.Options`.
"""

from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np

from .ink import Blob, Geometry, Ink
from .rules import Rules
from .normalize import normalize_digit
from .tuning import TUNING

T = TUNING["digits"]


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
    cell: tuple | None = None                # (row, column) of its cell, where a grid or table was found


@dataclass
class Mark:
    """Something on the page that is not a handwritten digit, and why: "none" (the classifier:
    printed text or digits, letters, signs), "in a word" (a digit touching "none" marks),
    "printed" (a digit in the page's print), "stroke" (a lone unsure 1: an edge, a fold, a
    printed l), "doubtful", "texture", "desk", "rule" (a short table rule), "edge", "too tall"."""
    box: tuple
    kind: str


# --- lines --------------------------------------------------------------------------------------

@dataclass
class Line:
    """Blobs chained left to right, where their bodies start and how tall they are, and the row
    of a table or grid they fill (the band between two rules), if any."""
    blobs: list
    top: float = 0.0
    height: float = 0.0
    band: tuple | None = None

    def measure(self):
        # the height of the line's tall-but-ordinary digits: small 0s and long tails are outliers
        self.height = float(np.percentile([b.h for b in self.blobs], 60))
        self.top = float(np.median([b.y0 for b in self.blobs]))
        return self


def core_y(b, height: float) -> float:
    """A blob's height on the page: the middle of its top part (tails of 7s, 9s, 4s hang below)."""
    return b.y0 + min(b.h, height) / 2


def group_lines(blobs: list, geom: Geometry, line_gap: float, rules=None) -> list:
    """Lines in reading order: top to bottom, and left block before right block in a row.

    Blobs in the same band between two rules (a row of a table or a sudoku, a line of ruled
    paper) form one line, however wide their gaps. The others are taken left to right and each
    joins the line whose last blobs sit at its height (within 0.6 digit heights), so slightly
    slanted lines still chain; a gap wider than `line_gap` digit heights ends a line (two
    columns of writing become two lines), unless a table's vertical rule runs through it (the
    columns of one table row).
    """
    H = geom.height
    rows, columns = (rules.rows, rules.columns) if rules else ([], [])
    banded, free = {}, []
    for b in blobs:
        band = row_band(b, rows, H)
        if band:
            cx, cy = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2
            column = Rules.between(columns, cy, cx)
            b.cell = (band, (round(column[0]), round(column[1])) if column else None)
            banded.setdefault(band, []).append(b)
        else:
            free.append(b)
    chains, levels = [], []                          # blobs of each line, their core heights
    for b in sorted(free, key=lambda b: b.x0):
        y = core_y(b, H)
        best, dist = None, 0.6 * H
        for n, (ln, ys) in enumerate(zip(chains, levels)):
            d = abs(sum(ys[-3:]) / len(ys[-3:]) - y)
            if d < dist and (b.x0 - ln[-1].x1 <= line_gap * H or ruled_gap(ln[-1], b, columns)):
                best, dist = n, d
        if best is None:
            chains.append([b])
            levels.append([y])
        else:
            chains[best].append(b)
            levels[best].append(y)
    lines = [Line(ln).measure() for ln in chains]
    lines += [Line(sorted(bs, key=lambda b: b.x0), band=band).measure() for band, bs in banded.items()]
    lines.sort(key=lambda ln: ln.top + ln.height / 2)
    side_by_side = []                               # lines side by side at the same height
    for ln in lines:
        mid = ln.top + ln.height / 2
        if side_by_side and abs(side_by_side[-1][0] - mid) < 0.6 * H:
            side_by_side[-1][1].append(ln)
        else:
            side_by_side.append([mid, [ln]])
    return [ln for _, row in side_by_side for ln in sorted(row, key=lambda ln: ln.blobs[0].x0)]


def ruled_gap(a: Blob, b: Blob, columns: list) -> bool:
    """Whether a vertical rule (of `columns`) runs between blobs a and b (left to right) across
    both: they sit in two columns of one table."""
    top, bottom = min(a.y0, b.y0), max(a.y1, b.y1)
    return any(a.x1 <= r.at <= b.x0 and r.start <= top and r.end >= bottom for r in columns)


def row_band(b: Blob, rows: list, height: float):
    """The band between the horizontal rules (of `rows`) above and below a blob, if it is a band
    that holds one line of digits (0.8 to 2.5 digit heights tall) and the blob lies within it."""
    if not rows:
        return None
    cx, cy = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2
    band = Rules.between(rows, cx, cy)
    if band is None or not 0.8 * height <= band[1] - band[0] <= 2.5 * height:
        return None
    return (round(band[0]), round(band[1]))


# --- classification -----------------------------------------------------------------------------

@dataclass(eq=False)          # compared by identity: `in`, `index` never compare arrays
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
    cell: tuple | None = None  # (row, column) in a grid or table
    darkness: float = 0.0      # how dark its ink is: 0 = paper, 1 = the page's darkest ink


FAINT = T["FAINT"]  # ink lighter than this share of a blob's darkest is not its own
NARROW = T["NARROW"]  # a mark narrower than this share of its height, read as an unsure 1, is read again
NARROW_SURE = T["NARROW_SURE"]  # (a 1 read under this among the digits is unsure)
WIDENED = T["WIDENED"]  # stretched to this share of its height
SPLIT_COST = T["SPLIT_COST"]  # each extra piece must buy at least this much log-probability
STACKED = T["STACKED"]  # a mark this many times as tall as its line may reach into another line


def digit_columns(labels: list) -> np.ndarray:
    """Which of a model's outputs are digits (an 11-class model's last one, "none", is not)."""
    return np.array([label.isdigit() for label in labels])


def as_digit(probs: np.ndarray, digit: np.ndarray) -> np.ndarray:
    """The digit classes' probabilities given that the mark is a digit (renormalised without
    "none"): how well a piece reads as a digit, whatever "none" thinks of it (decided later)."""
    p = probs[..., digit]
    return p / np.maximum(p.sum(-1, keepdims=True), 1e-9)


def blob_ink(ink: Ink, b: Blob) -> np.ndarray:
    """The blob's ink as float white-on-black in [0,1] over its box.

    Only the blob's own components are kept (a neighbour reaching into its box is masked out;
    holes stay holes); faint edge pixels keep their grey level, like MNIST's anti-aliasing.
    """
    labels = ink.labels[b.y0:b.y1, b.x0:b.x1]
    mask = labels == b.ids[0] if len(b.ids) == 1 else np.isin(labels, b.ids)
    if ink.ruled is not None:
        mask &= ~rule_scraps(mask, ink.ruled[b.y0:b.y1, b.x0:b.x1] > 0, ink.bridge)
    flat = ink.flat[b.y0:b.y1, b.x0:b.x1].astype(np.float32)
    darkness = np.minimum((ink.paper - flat) * (1.0 / max(ink.paper - ink.darkest, 1.0)), 1.0) * mask
    # a much fainter print that the writing touches (a form's guide glyph, a faint rule) is not
    # part of the digit: keep what is at least FAINT as dark as the blob's own ink
    # (the anti-aliased rim of a stroke, within a pixel of its core, stays)
    inked = darkness[mask]
    if inked.size:
        core = (darkness >= FAINT * percentile(inked, 90)).astype(np.uint8)
        darkness[cv2.dilate(core, np.ones((3, 3), np.uint8)) == 0] = 0
    return darkness


def rule_scraps(mask: np.ndarray, ruled: np.ndarray, k: int) -> np.ndarray:
    """The pixels of a blob (`mask`) put back on a rule (`ruled`: where rules were) that no
    stroke of its own crosses: its own other ink is not within k px both above and below them
    (or left and right). A stroke that crosses a rule keeps its pixels on it; where a digit
    above a rule and one below it both touch it, the piece of rule between them, put back as
    a crossing, is a scrap of neither (a dash under a 5 reads as "none")."""
    back = mask & ruled
    if not back.any():
        return back
    own = mask & ~ruled
    h, w = own.shape
    up, down, left, right = (np.zeros_like(own) for _ in range(4))
    for d in range(1, min(k, max(h, w))):
        up[d:] |= own[:-d]
        down[:-d] |= own[d:]
        left[:, d:] |= own[:, :-d]
        right[:, :-d] |= own[:, d:]
    return back & ~((up & down) | (left & right))


def ink_darkness(v: np.ndarray) -> float:
    """The typical darkness of a mark's ink (`blob_ink` values): the median over its inked pixels."""
    inked = v[v > 0.2]
    return percentile(inked, 50) if inked.size else 0.0


def percentile(values: np.ndarray, q: int) -> float:
    """np.percentile(values, q) of a non-empty 1-D float32 array, to the bit (its linear
    interpolation, in float32), and np.median(values) for q = 50, in a tenth of their time: they
    run per mark, where numpy's general code costs 50 us a call on a few hundred pixels."""
    n = values.size
    if q == 50:                                 # np.median: the mean of the middle one or two, in float32
        half = n // 2
        middle = np.partition(values, (half - 1, half) if n % 2 == 0 else half)
        return float(middle[half]) if n % 2 else float(middle[half - 1] + middle[half]) / 2
    at = (n - 1) * (q / 100)
    below = min(int(at), n - 1)
    above = min(below + 1, n - 1)
    middle = np.partition(values, (below, above))
    a, b, t = middle[below], middle[above], at - below
    step = b - a
    return float(b - step * np.float32(1 - t)) if t >= 0.5 else float(a + step * np.float32(t))


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


class TooManyCrops(Exception):
    """Raised when a page's marks would take more crops to classify than its budget allows."""


class CropBudget:
    """How many more crops a page may classify (`page.NOISE`): `take(n)` before n are classified."""

    def __init__(self, crops: int):
        self.left = crops

    def take(self, n: int) -> None:
        if n > self.left:
            raise TooManyCrops
        self.left -= n


def classify_blobs(lines: list, ink: Ink, geom: Geometry, recognizer, opt, budget=None) -> list:
    """Classify every blob in one batch; cut wide ones where the classifier reads the pieces best.

    A wide blob gets candidate cuts (`cut_columns`); every piece between two cuts is classified
    (one more batch), and dynamic programming picks the cut maximising
    sum(log p(piece)) - shape costs - SPLIT_COST per piece; the blob stays whole if that wins.
    The crops (blobs and their variants, then the pieces) are taken from `budget` (a CropBudget)
    before they are classified: TooManyCrops past it (the bound on a page's time, `page.NOISE`).
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
    if budget is not None:
        budget.take(len(crops))
    probs = recognizer.predict(np.stack(crops))
    digit = digit_columns(recognizer.labels)
    best, best_score = {}, {}
    for j, (k, v, *_rest) in enumerate(options):
        score = np.log(as_digit(probs[j], digit).max() + 1e-6) - shape_cost(v, lines[items[k][0]], width)
        if k not in best or score > best_score[k]:
            best[k], best_score[k] = j, score
    if not probs.flags.writeable:       # (an interpreter's own output buffer)
        probs = probs.copy()
    widen_unsure_ones(options, best, best_score, probs, crops, digit, recognizer, opt, budget)
    reads = []
    pieces, plans, stacked = [], [], []
    first = {}                                  # each blob's first option: its whole ink
    for j, (k, *_rest) in enumerate(options):
        first.setdefault(k, j)
    for k, (i, b) in enumerate(items):
        if k not in best:
            reads.append([])
            continue
        j = best[k]
        _, v, x0, y0 = options[j]
        ln = lines[i]
        h, w = v.shape
        whole = Read(x0, y0, x0 + w, y0 + h, probs[j], crops[j], i, cell=b.cell, darkness=ink_darkness(v))
        whole.odd = (b.touches_edge or b.clutter > 0.005 or max(w, h) < 0.45 * ln.height
                     or w > 1.6 * max(h, ln.height))
        reads.append([whole])
        _, fv, fx, fy = options[first[k]]
        other = line_across(fx, fy, fx + fv.shape[1], fy + fv.shape[0], lines, i)
        if opt.split and other is not None:     # two lines' digits touching: cut across, not down
            upper, lower = sorted((i, other), key=lambda n: lines[n].top)
            stacked.append((k, upper, lower, fv, fx, fy))
            continue
        # wide blobs may be touching digits (a confident read of a moderately wide one is kept)
        if not opt.split or w < 1.15 * width or (w < 1.6 * width and as_digit(whole.probs, digit).max() > 0.9):
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
    if budget is not None:
        budget.take(len(pieces))
    if pieces:
        pcrops = [normalize_digit(p[5], ink="white", match_stroke=opt.match_stroke) for p in pieces]
        pprobs = recognizer.predict(np.stack(pcrops))
        for k, xs, segs in plans:
            i, whole = items[k][0], reads[k][0]
            whole_score = best_score[k]
            path = best_path(len(xs), segs, pieces, as_digit(pprobs, digit), lines[i], width, whole_score)
            if path:
                reads[k] = [Read(*pieces[j][1:5], pprobs[j], pcrops[j], i, cell=whole.cell,
                                 darkness=ink_darkness(pieces[j][5])) for j in path]
    if stacked:
        cut_across_lines(stacked, items, reads, best_score, lines, width, recognizer, opt, budget)
    return [r for rs in reads for r in rs]


def line_across(x0: int, y0: int, x1: int, y1: int, lines: list, i: int):
    """The other line whose digits a mark of line i reaches into: for a tall mark (over `STACKED`
    of line i's height), the nearest line that it covers for half its height or more, at its
    place across the page (a digit touching the digit under it, writing on every line of ruled
    paper; the two may have been put in either line). Its index, or None."""
    ln = lines[i]
    if y1 - y0 < STACKED * ln.height:
        return None
    found = None
    for j, o in enumerate(lines):
        if (j != i and min(y1, o.top + o.height) - max(y0, o.top) >= 0.5 * o.height
                and min(b.x0 for b in o.blobs) - o.height < (x0 + x1) / 2 < max(b.x1 for b in o.blobs) + o.height
                and (found is None or abs(o.top - ln.top) < abs(lines[found].top - ln.top))):
            found = j
    return found


def cut_across_lines(stacked: list, items: list, reads: list, best_score: dict, lines: list,
                     width: float, recognizer, opt, budget) -> None:
    """Cut each mark of `stacked` [(item, upper line, lower line, ink, x0, y0)] in two across,
    near where the lower line starts (five rows from 0.3 of its height above its top to 0.3
    below), where the two pieces read best as digits: the top piece goes to the upper line and
    the bottom one to the lower line. Cut where each piece reads as a digit as surely as the
    whole does (the surer a merged pair reads as one digit, the surer each must be); kept whole
    where a piece is under half its line's height or the bottom one is a narrow stroke (a 7's
    tail)."""
    cands = []
    for k, upper, lower, v, x0, y0 in stacked:
        for f in (-0.3, -0.15, 0.0, 0.15, 0.3):
            c = int(round(lines[lower].top + f * lines[lower].height - y0))
            if not 0 < c < v.shape[0]:
                continue
            top, bottom = trim(v[:c]), trim(v[c:])
            if top is None or bottom is None:
                continue
            th, bh, bw = top[1] - top[0], bottom[1] - bottom[0], bottom[3] - bottom[2]
            if th < 0.5 * lines[upper].height or bh < 0.5 * lines[lower].height or bw < 0.35 * bh:
                continue
            ty0, ty1, tx0, tx1 = top
            by0, by1, bx0, bx1 = bottom
            cands.append((k, upper, lower, (x0 + tx0, y0 + ty0, v[ty0:ty1, tx0:tx1]),
                          (x0 + bx0, y0 + c + by0, v[c + by0:c + by1, bx0:bx1])))
    if not cands:
        return
    if budget is not None:
        budget.take(2 * len(cands))
    crops = [normalize_digit(p[2], ink="white", match_stroke=opt.match_stroke) for c in cands for p in c[3:]]
    probs = recognizer.predict(np.stack(crops))
    digit = digit_columns(recognizer.labels)
    chosen = {}
    for n, (k, upper, lower, top, bottom) in enumerate(cands):
        score = min(np.log(as_digit(probs[2 * n], digit).max() + 1e-6) - shape_cost(top[2], lines[upper], width),
                    np.log(as_digit(probs[2 * n + 1], digit).max() + 1e-6) - shape_cost(bottom[2], lines[lower], width))
        if score > best_score[k] and (k not in chosen or score > chosen[k][0]):
            chosen[k] = (score, n)
    for k, (_, n) in chosen.items():
        _, upper, lower, top, bottom = cands[n]
        i, whole = items[k][0], reads[k][0]
        reads[k] = [Read(x, y, x + p.shape[1], y + p.shape[0], probs[2 * n + m], crops[2 * n + m], line,
                         cell=piece_cell(whole.cell, lines, i, line), darkness=ink_darkness(p))
                    for m, ((x, y, p), line) in enumerate(((top, upper), (bottom, lower)))]


def piece_cell(cell, lines: list, i: int, line: int):
    """The cell of a piece cut across from a mark of line i with `cell`, put in `line`: the
    mark's own cell in its own line; in the other, that line's row (its band) in the same
    column, where both are known."""
    if line == i:
        return cell
    if cell is None or lines[line].band is None:
        return None
    return (lines[line].band, cell[1])


def widen_unsure_ones(options, best, best_score, probs, crops, digit, recognizer, opt, budget):
    """Read again, stretched to `WIDENED` of their height, the marks narrower than `NARROW` of it
    read as an unsure 1 (under `NARROW_SURE` among the digits): fitted by its height into the
    20x20 box, a narrow 7 or 9 keeps a top of a few pixels, which reads as a 1's flag. The wider
    reading replaces the first where the model is surer of it. An upright 1 reads surely as it
    is; a slanted one, unsure more often, is wider than `NARROW` (stretched, it can read as a 7)."""
    labels = list(recognizer.labels)
    again = []
    for k, j in best.items():
        v = options[j][1]
        h, w = v.shape
        if w < NARROW * h and unsure_one(probs[j], labels, NARROW_SURE):
            again.append((k, j, cv2.resize(v, (int(round(WIDENED * h)), h), interpolation=cv2.INTER_LINEAR)))
    if not again:
        return
    if budget is not None:
        budget.take(len(again))
    wide = [normalize_digit(v, ink="white", match_stroke=opt.match_stroke) for _, _, v in again]
    wprobs = recognizer.predict(np.stack(wide))
    for (k, j, _), c, p in zip(again, wide, wprobs):
        gain = np.log(as_digit(p, digit).max() + 1e-6) - np.log(as_digit(probs[j], digit).max() + 1e-6)
        if gain > 0:
            probs[j], crops[j] = p, c
            best_score[k] += gain


def pixel_shifts(crop: np.ndarray) -> np.ndarray:
    """A 28x28 crop moved one pixel right, left, down and up (the edge filled with background):
    float32 [4, 28, 28]."""
    out = np.zeros((4, 28, 28), np.float32)
    out[0, :, 1:] = crop[:, :-1]
    out[1, :, :-1] = crop[:, 1:]
    out[2, 1:] = crop[:-1]
    out[3, :-1] = crop[1:]
    return out


def steady_reads(reads: list, recognizer, opt, budget: CropBudget) -> None:
    """Read the marks that sit near a decision once more, moved by a pixel each way, and keep the
    mean of the five readings (test-time augmentation): "none" between 0.5 and `SURE_NONE`, or a
    likeliest digit between `reject` and 0.5. Where a crop happens to fall on the pixel grid then
    no longer tips a mark over a threshold. A page of clean writing has a few such marks (2 of
    39 on `hypjudy_photo_4`); when they would take more crops than the page's budget has left,
    none is read again."""
    digit = digit_columns(recognizer.labels)
    near = [r for r in reads if 0.5 < r.probs[~digit].sum() < SURE_NONE
            or opt.reject < r.probs[digit].max() < 0.5]
    if not near or 4 * len(near) > budget.left:
        return
    budget.take(4 * len(near))
    probs = recognizer.predict(np.concatenate([pixel_shifts(r.crop28) for r in near]))
    for r, p in zip(near, probs.reshape(len(near), 4, -1)):
        r.probs = (r.probs + p[0] + p[1] + p[2] + p[3]) / np.float32(5)


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


def best_digit(probs: np.ndarray, labels: list) -> int:
    """The index of the likeliest digit label (an 11-class model's "none" left out)."""
    digit = digit_columns(labels)
    return int(np.flatnonzero(digit)[probs[digit].argmax()])


def finish_lines(reads: list, labels: list, opt, none_threshold: float = 0.5):
    """Set aside what is not a digit (the classifier's "none" above `none_threshold`, doubtful
    shapes), sort each line left to right, renumber lines, make strings.
    Returns (digits, line strings, [(read, kind)])."""
    digit = digit_columns(labels)
    share = sure_none_share(reads, digit)
    clean = share < CLEAN_PAGE                 # nothing but writing: see `CLEAN_PAGE`
    if share < PRINTED_PAGE:
        none_threshold = max(none_threshold, CLEAN_NONE)
    keep, rejected = [], []
    for r in reads:
        if opt.keep_all:
            keep.append(r)
        elif (~digit).any() and r.probs[~digit].sum() > none_threshold:
            rejected.append((r, "none"))
        elif (r.odd or not (digit.all() or clean)) and r.probs[digit].max() < opt.reject:
            rejected.append((r, "doubtful"))      # (a model that knows "none": any unsure read)
        else:
            keep.append(r)
    if not (digit.all() or opt.keep_all):   # a model that knows "none": doubtful pieces of words
        sure = [r for r in keep if r.probs[digit].max() > 0.9]
        letters = [r for r, kind in rejected if kind == "none" and r.probs[~digit].sum() > SURE_NONE]
        # (beside sure digits, a mark that reads as no digit at all, under `reject`, is the letter
        # of a word: the a and s of a cursive "als" beside its l read as a 1)
        in_number = [r for r, kind in rejected if kind == "none" and touches(r, sure, NUMBER_GAP)
                     and (clean or r.probs[~digit].sum() < IN_NUMBER and not touches(r, letters)
                          and r.probs[digit].max() >= opt.reject)]
        # (a mark no digit is read for, between two sure digits close on both sides, is an odd
        # digit of their number: a 5 with a flat belly, a 0 left open at the top)
        in_number += [r for r, kind in rejected if kind == "doubtful" and touches(r, sure, NUMBER_GAP) == 2]
        keep += in_number
        rejected = [(r, kind) for r, kind in rejected if r not in in_number]
        nones = [r for r, kind in rejected if kind == "none"]
        # a digit in a chain of letters, between two, or beside one and doubtful, is a letter
        # (on a page of nothing but writing, only the last: an unsure mark beside a word)
        words = set() if clean else wordy(keep, nones)
        in_word = [r for r in keep if (r in words or touches(r, nones) == 2) and not clean
                   or r.probs[digit].max() < IN_WORD and touches(r, nones)]
        in_word += spread_word(keep, in_word, digit)
        style = print_style(nones, reads, digit)
        table = table_reads(reads)
        printed = printed_like(keep, style, table)
        printed += [r for r in darker_print(keep, table) + printed_strokes(keep, style, table, labels)
                    if r not in printed]
        keep = [r for r in keep if r not in in_word and r not in printed]
        rejected += [(r, "in a word") for r in in_word] + [(r, "printed") for r in printed]
        strokes = lone_strokes(keep, table, labels)
        keep = [r for r in keep if r not in strokes]
        rejected += [(r, "stroke") for r in strokes]
        if share >= WORDY_PAGE and style is None:              # a page of handwritten words:
            unsure = [r for r in keep if r.probs[digit].max() < opt.low_confidence]   # a digit read
            keep = [r for r in keep if r not in unsure]                   # unsurely there is a letter
            rejected += [(r, "in a word") for r in unsure]
    by_line = {}
    for r in keep:
        by_line.setdefault(r.line, []).append(r)
    ordered, texts = [], []
    for n, i in enumerate(sorted(by_line)):
        ln = sorted(by_line[i], key=lambda r: (r.x0 + r.x1) / 2)
        for r in ln:
            r.line = n
        ordered.extend(ln)
        texts.append("".join(labels[best_digit(r.probs, labels)] for r in ln))
    number_cells(ordered)
    return ordered, texts, rejected


SURE_NONE = T["SURE_NONE"]  # "none" above this is surely not a digit (print, a letter, a sign)
SURE_NONE_BAND = T["SURE_NONE_BAND"]  # the page's share of such marks counts those this close in part
PRINTED_PAGE = T["PRINTED_PAGE"]  # a page where this share of the marks is surely "none" holds print or words
CLEAN_NONE = T["CLEAN_NONE"]  # elsewhere a mark is "none" only above this probability
CLEAN_PAGE = T["CLEAN_PAGE"]  # under this share (one mark in 30) a sheet holds nothing but writing: there
                       # an unsure read is an odd digit, no digit is part of a word, and a "none"
                       # mark inside a number is a digit
WORDY_PAGE = T["WORDY_PAGE"]  # a page where this share of the marks is surely "none", none of them print,
                              # holds handwritten words (a letter, a postcard)
IN_NUMBER = T["IN_NUMBER"]  # a mark doubtfully "none" (below this) that touches sure digits is one of them
IN_WORD = T["IN_WORD"]  # a digit read less surely than this, touching a "none" mark, is a letter
NUMBER_GAP = T["NUMBER_GAP"]  # a mark this close (in its heights) to a sure digit may be in its number
PRINT_SURE = T["PRINT_SURE"]  # the print's style is read off the marks "none" above this
LONE_ONE = T["LONE_ONE"]  # a 1 alone on its line (outside a table) read under this is a stroke
PRINT_STROKE = T["PRINT_STROKE"]  # a 1 in a line of print read under this is one of its strokes (l, I, /)
DARKER_PRINT = T["DARKER_PRINT"]  # in a table, digits this much darker than the rest (and of one height) are print


def sure_none_share(reads: list, digit: np.ndarray) -> float:
    """The share of a page's marks that the classifier surely calls "none" (print, words, signs).
    A mark within `SURE_NONE_BAND` of `SURE_NONE` counts in part (linearly, half at SURE_NONE):
    the share then moves a little when a probability does, and a last digit of one mark's
    probability (another CPU's rounding) cannot switch the whole page's reading (CLEAN_PAGE,
    PRINTED_PAGE) as a count would."""
    if digit.all() or not reads:
        return 1.0
    none = np.array([r.probs[~digit].sum() for r in reads], dtype=np.float64)
    return float(np.mean(np.clip((none - SURE_NONE) / (2 * SURE_NONE_BAND) + 0.5, 0.0, 1.0)))


def wordy(keep: list, nones: list) -> set:
    """Kept digits in a word: marks that stand right beside each other on a line (as `touches`
    sees it) form a chain; in a chain of more "none" marks than digits, the digits are letters
    too (the l and d of a cursive "Harald" read as 1 and 6)."""
    marks = sorted(keep + nones, key=lambda r: (r.line, r.x0))
    kept = {id(r) for r in keep}
    out, chain = set(), []
    for r in marks + [None]:
        if chain and r is not None and touches(r, [chain[-1]]):
            chain.append(r)
            continue
        digits = [m for m in chain if id(m) in kept]
        if len(chain) - len(digits) > len(digits):
            out.update(digits)
        chain = [r]
    return out


def spread_word(keep: list, in_word: list, digit: np.ndarray) -> list:
    """The kept digits read under `IN_WORD` that stand right beside a letter of `in_word`, and
    beside those, and so on: the unsure a of a handwritten "abc" whose b is a letter."""
    taken = {id(r) for r in in_word}
    unsure = [r for r in keep if id(r) not in taken and r.probs[digit].max() < IN_WORD]
    more, frontier = [], in_word
    while frontier and unsure:        # each mark is taken once: at most len(keep) rounds
        frontier = [r for r in unsure if touches(r, frontier)]
        taken.update(id(r) for r in frontier)
        unsure = [r for r in unsure if id(r) not in taken]
        more += frontier
    return more


def touches(r: Read, others: list, gap: float = 0.34) -> int:
    """On how many sides (0, 1 or 2) a mark of `others` stands right beside r on its line (a gap
    under `gap` times r's height (a third unless told), overlapping it in height)."""
    h = r.y1 - r.y0
    sides = set()
    for o in others:
        if o.line != r.line or min(r.y1, o.y1) - max(r.y0, o.y0) < 0.3 * h:
            continue
        if -0.5 * h < max(o.x0 - r.x1, r.x0 - o.x1) < gap * h:
            sides.add(o.x0 + o.x1 < r.x0 + r.x1)
    return len(sides)


def print_style(nones: list, reads: list, digit: np.ndarray):
    """The page's print, read off the marks the classifier called "none" (above `PRINT_SURE`):
    (those marks, their median height, their median darkness, {line: how many marks of that
    height within 25% it holds}) when there are at least three and a third of them are within
    12% of that height, two of those on one line (printed characters share a typeface and a
    height, and stand in lines of text; handwritten letters and signs do not), else None.
    A line of print holds two such marks or more, counted among all `reads` read as "none" above
    `PRINT_SURE`, whatever the page's threshold for setting them aside."""
    sure = [r for r in nones if r.probs[~digit].sum() > PRINT_SURE]
    if len(sure) < 3:
        return None
    height = float(np.median([r.y1 - r.y0 for r in sure]))
    alike = [r for r in sure if abs((r.y1 - r.y0) / height - 1) < 0.12]
    if len(alike) < max(3, len(sure) / 3) or max(Counter(r.line for r in alike).values()) < 2:
        return None
    darkness = float(np.median([r.darkness for r in sure]))
    marks = Counter(r.line for r in reads if r.probs[~digit].sum() > PRINT_SURE
                    and abs((r.y1 - r.y0) / height - 1) < 0.25)
    return sure, height, darkness, {line: n for line, n in marks.items() if n >= 2}


def printed_like(keep: list, style, table: set) -> list:
    """Kept digits set in the page's print (`style`, from `print_style`): of the print's height
    (within 12%), on a line of print or in a table's cell (`table`, from `table_reads`) when the
    table holds such print (a sudoku's givens are print across the whole grid, and a row of it
    may hold no given the model surely calls "none"), and with ink as dark as the print's or
    darker (within 0.12 of its median: print is the darkest ink on a sheet, and a hand's shadow
    darkens it further): a sudoku's givens, a form's row number, a page number in a running head.
    Outside a table, a line's digits are print only where they do not outnumber its print: a
    printed number stands in a line of text ("Week 36", "Fig. 3"), while "236022 km" is a number
    written by hand with a word beside it."""
    if style is None or not keep:
        return []
    sure, style_h, style_d, print_lines = style
    fits = lambda r, within: abs((r.y1 - r.y0) / style_h - 1) < within
    table_print = any(id(r) in table for r in sure if fits(r, 0.25))
    out = [r for r in keep if (r.line in print_lines or table_print and id(r) in table)
           and fits(r, 0.12) and r.darkness > style_d - 0.12]
    digits = Counter(r.line for r in out if id(r) not in table)
    return [r for r in out if id(r) in table or digits[r.line] <= print_lines[r.line]]


def printed_strokes(keep: list, style, table: set, labels: list) -> list:
    """Kept 1s in a line of print, outside a table, as dark as the print's ink, 0.6 to 1.6 times
    its height and read as a 1 (among the digits, "none" left out) under `PRINT_STROKE`: the
    straight strokes of print (l, I, /, ), |), taller than the lower-case letters the print's
    height was read off, which `printed_like` misses. A handwritten 1 reads surely as a 1."""
    if style is None or "1" not in labels:
        return []
    _, style_h, style_d, print_lines = style
    return [r for r in keep if r.line in print_lines and id(r) not in table
            and unsure_one(r.probs, labels, PRINT_STROKE)
            and 0.6 < (r.y1 - r.y0) / style_h < 1.6 and r.darkness > style_d - 0.12]


def unsure_one(probs: np.ndarray, labels: list, below: float) -> bool:
    """Whether a read's likeliest digit is a 1 (among the digits, "none" left out) read under
    `below`."""
    if "1" not in labels:
        return False
    digit = digit_columns(labels)
    p = as_digit(probs, digit)
    one = int(np.flatnonzero(digit).tolist().index(labels.index("1")))
    return bool(p.argmax() == one and p[one] < below)


def lone_strokes(keep: list, table: set, labels: list) -> list:
    """Kept 1s alone on their line (one or two, nothing else), outside a table, read under
    `LONE_ONE`: a straight stroke standing alone is far more often the edge of a sheet or a
    desk, a fold, the end of a rule or a printed l, / or ) than a number 1 written by itself,
    which reads surely."""
    if "1" not in labels:
        return []
    one = labels.index("1")
    by_line = {}
    for r in keep:
        by_line.setdefault(r.line, []).append(r)
    return [r for rs in by_line.values() if len(rs) <= 2
            and all(best_digit(r.probs, labels) == one for r in rs)
            for r in rs if id(r) not in table and r.probs[one] < LONE_ONE]


def table_reads(reads: list) -> set:
    """The reads (ids) in the cells of a table or grid: rules above, below and on both sides,
    where the cells make at least three columns (a margin line beside ruled paper makes one or
    two)."""
    cells = [r for r in reads if r.cell and r.cell[0] and r.cell[1]]
    return {id(r) for r in cells} if len({r.cell[1] for r in cells}) >= 3 else set()


def darker_print(keep: list, table: set) -> list:
    """Print in a table that the model reads as digits, given away by its ink and its height: of
    the kept digits in `table`'s cells, split in two by darkness (the split that parts them
    most, as Otsu's threshold does), the darker group when it is `DARKER_PRINT` darker on
    average and most of it (70%) shares one height (within 10% of its median), as printed
    characters do: a sudoku's givens when no mark the model surely calls "none" shows the print."""
    cells = sorted((r for r in keep if id(r) in table), key=lambda r: r.darkness)
    if len(cells) < 6:
        return []
    d = [r.darkness for r in cells]
    total, n = sum(d), len(d)
    best, split, below = -1.0, 0, 0.0
    for k in range(1, n):
        below += d[k - 1]
        m0, m1 = below / k, (total - below) / (n - k)
        spread = k * (n - k) * (m1 - m0) ** 2
        if spread > best:
            best, split, gap = spread, k, m1 - m0
    dark = cells[split:]
    height = float(np.median([r.y1 - r.y0 for r in dark]))
    alike = [r for r in dark if abs((r.y1 - r.y0) / height - 1) < 0.1]
    if gap < DARKER_PRINT or len(alike) < max(3, 0.7 * len(dark)):
        return []
    return alike


def number_cells(reads: list) -> None:
    """Replace each read's cell (the rules around it, page pixels) by (row, column) indices: rows
    counted top to bottom over the page's bands, columns left to right within a row."""
    cells = [r.cell for r in reads]             # the rules, all read before any is replaced
    bands = sorted({c[0] for c in cells if c and c[0]})
    for r, cell in zip(reads, cells):
        if not (cell and cell[0]):
            r.cell = None
            continue
        columns = sorted({c[1] for c in cells if c and c[0] == cell[0] and c[1]})
        r.cell = (bands.index(cell[0]), columns.index(cell[1]) if cell[1] in columns else None)


def to_digits(image: np.ndarray, reads: list, to_input, labels: list, opt) -> list:
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
        k = best_digit(r.probs, labels)
        prob = float(r.probs[k])
        out.append(Digit((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), r.line, labels[k], prob,
                         prob < opt.low_confidence, r.crop28, image[y0:y1, x0:x1].copy(), r.cell))
    return out


def to_marks(image: np.ndarray, rejected: list, to_input) -> list:
    """Marks (boxes in the input image's pixels) of what was set aside: [(read or blob, kind)]."""
    if not rejected:
        return []
    corners = np.float32([[(r.x0, r.y0), (r.x1, r.y0), (r.x1, r.y1), (r.x0, r.y1)] for r, _ in rejected])
    corners = to_input(corners.reshape(-1, 2)).reshape(-1, 4, 2)
    h, w = image.shape[:2]
    # all boxes at once: a page of noise sets aside thousands of marks (`edgedigits fuzz`)
    top_left = np.clip(np.floor(corners.min(1)), 0, [w - 1, h - 1]).astype(int)
    bottom_right = np.clip(np.ceil(corners.max(1)), top_left + 1, [w, h]).astype(int)
    return [Mark((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), kind)
            for (_, kind), (x0, y0), (x1, y1) in zip(rejected, top_left, bottom_right)]
