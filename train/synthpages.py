"""Synthetic phone photos of handwritten digits on paper, to test the page reader (not to train).

A page is a sheet in one of five `STYLES` (ruled with light blue rules, squared with grey squares,
a dotted grid, plain, or ruled with a red margin line) on white, cream, pink or yellowish paper,
with several lines of 4-10 real MNIST test digits written in blue, black or pencil ink (the ink is
multiplied onto the paper, so rules show through). On ruled paper a digit is 0.6-0.9 of the line
spacing tall and sits on its rule; on squared and dotted paper it takes one or two squares.

Beside the digits sit marks that must NOT be read, never inside a line of digits: handwritten
words and signs (+ - = x ...) after the end of a digit line or on lines of their own, and printed
text with printed digits ("Page 12", "Exercise 4") on lines of their own. They are not in the
truth lines; `info["distractors"]` records them.

Then the photo: the sheet turned by `tilt` degrees (default: random within +-8) with a slight
perspective, a desk where the sheet ends, an illumination gradient and shading, a colour cast,
Gaussian blur (sigma 0.5-1.2), sensor noise and JPEG compression (quality 70-90).

    image, lines, info = make_page(0, test_images, test_labels, "ruled")
    write_pages("runs/synth", 30, seed=0)      # PNGs + labels.csv for `edgedigits eval-paper`

Only numpy, OpenCV and Pillow (through `negatives`' fonts) are used.
"""

import csv
import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from edgedigits.train import negatives

STYLES = ("ruled", "squared", "dotted", "plain", "margin")
INKS = {"blue": (150, 62, 28), "black": (48, 42, 40), "pencil": (118, 115, 112)}      # BGR
PAPERS = {"white": (246, 246, 244), "cream": (222, 240, 250), "pink": (234, 226, 252),
          "yellow": (170, 238, 250)}
RULE_BLUE, GRID_GREY, MARGIN_RED = (228, 190, 150), (170, 170, 170), (95, 95, 215)
DESKS = ((40, 38, 36), (60, 80, 110), (95, 95, 95), (30, 45, 70))

HAND_WORDS = ("ok", "Name", "sum", "total", "Ans", "yes", "no", "see", "Date", "abc", "Tom",
              "done", "page", "x", "Ex", "Q", "tel", "kg", "km", "and", "nr")
HAND_SIGNS = ("+", "-", "=", "x", "?", "&", ":", "=", "+")
PRINTED = ("Exercise 4", "Name:", "Date:", "Page 12", "No. 7", "Total", "Sudoku 118",
           "Class 3B", "Homework", "Score:", "Question 2", "Lesson 15", "Week 36", "Table 1",
           "Fig. 3", "Unit 5 Test")
# pages written with the MNIST training digits (to harvest and train on) use other words and
# print, so that the test pages' words stay unseen (the fonts are those of the negatives), and
# keep the negatives' rule (`negatives.CONFUSABLE`, `train.LEFT_OUT`): no handwritten letter
# written like a digit (o, l, S, z, g, b, ...) and no printed digit, which as "none" would teach
# the model to refuse real digits
TRAIN_WORDS = ("hi", "cat", "red", "we", "Mac", "far", "ink", "Ken", "ant", "mud", "jam", "rat",
               "tea", "Ann", "Fred", "hum", "wet", "cut", "max", "kit", "nut", "pen", "Kay", "AM")
TRAIN_PRINTED = ("Task", "Name", "Birthday:", "Chapter", "Item", "Sum", "Puzzle", "Group",
                 "Worksheet", "Marks:", "Problem", "Part", "Day", "Grid", "Step", "Quiz")


def _rng(rng_or_seed) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


def _pick(rng, seq):
    return seq[rng.integers(len(seq))]


# --- the sheet ----------------------------------------------------------------------------------

class Sheet:
    """A float BGR sheet in [0, 1]; marks are multiplied onto it (paper, rules and ink mix like
    real ink on paper)."""

    def __init__(self, w: int, h: int, paper, rng):
        self.w, self.h = w, h
        grain = cv2.resize(rng.standard_normal((h // 8 + 1, w // 8 + 1)).astype(np.float32),
                           (w, h), interpolation=cv2.INTER_CUBIC) * 0.012
        grain += rng.standard_normal((h, w), dtype=np.float32) * 0.006
        self.img = np.float32(paper)[None, None, :] / 255 * (1 + grain[..., None])

    def multiply(self, alpha: np.ndarray, colour, x0: int = 0, y0: int = 0) -> None:
        """Lay `colour` over the sheet with coverage `alpha` (float [h, w]) at (x0, y0)."""
        h, w = alpha.shape
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, self.w), min(y0 + h, self.h)
        if xa >= xb or ya >= yb:
            return
        a = alpha[ya - y0:yb - y0, xa - x0:xb - x0, None]
        tint = 1 - np.float32(colour) / 255
        self.img[ya:yb, xa:xb] *= 1 - a * tint

    def lines(self, segments, colour, width: float, strength: float) -> None:
        """Draw straight lines [(x0, y0, x1, y1), ...] (anti-aliased) in `colour`."""
        mask = np.zeros((self.h, self.w), np.uint8)
        t = max(1, int(round(width)))
        for x0, y0, x1, y1 in segments:
            cv2.line(mask, (int(round(x0 * 16)), int(round(y0 * 16))),
                     (int(round(x1 * 16)), int(round(y1 * 16))), 255, t, cv2.LINE_AA, 4)
        self.multiply(mask.astype(np.float32) * (strength / 255), colour)

    def dots(self, points, colour, radius: float, strength: float) -> None:
        mask = np.zeros((self.h, self.w), np.uint8)
        r = max(16, int(round(radius * 16)))
        for x, y in points:
            cv2.circle(mask, (int(round(x * 16)), int(round(y * 16))), r, 255, -1, cv2.LINE_AA, 4)
        self.multiply(mask.astype(np.float32) * (strength / 255), colour)


def rule_sheet(sheet: Sheet, style: str, spacing: float, top: float, left: float, rng) -> None:
    """Rules, squares, dots or a margin line over the whole sheet (`spacing` px apart, aligned so
    that a rule passes through y=`top` and, for grids, a column through x=`left`; a margin line
    just left of x=`left`)."""
    h, w = sheet.h, sheet.w
    ys = np.arange(top % spacing, h, spacing)
    if style in ("ruled", "margin"):
        sheet.lines([(0, y, w, y) for y in ys], RULE_BLUE, rng.uniform(1.0, 2.2), rng.uniform(0.5, 0.85))
    if style == "margin":
        x = left - spacing * rng.uniform(0.3, 0.7)
        red = [(x, 0, x, h)] + ([(x + 4, 0, x + 4, h)] if rng.random() < 0.3 else [])
        sheet.lines(red, MARGIN_RED, rng.uniform(1.2, 2.2), rng.uniform(0.6, 0.9))
    xs = np.arange(left % spacing, w, spacing)
    if style == "squared":
        colour = GRID_GREY if rng.random() < 0.7 else RULE_BLUE
        strength = rng.uniform(0.35, 0.7)
        sheet.lines([(0, y, w, y) for y in ys] + [(x, 0, x, h) for x in xs], colour, 1.0, strength)
    if style == "dotted":
        pts = [(x, y) for y in ys for x in xs]
        sheet.dots(pts, GRID_GREY, rng.uniform(1.0, 1.8), rng.uniform(0.5, 0.8))


# --- ink ----------------------------------------------------------------------------------------

def digit_alpha(image28: np.ndarray, height: float, pen: float = 0.2) -> np.ndarray:
    """An MNIST digit (uint8 white on black) as ink coverage `height`/20 times its size: its
    20 px box becomes `height` px, upscaled smoothly with crisp pen edges. `pen` (0.2-0.55):
    the grey level where the pen's edge is put, higher for a finer pen than MNIST's."""
    ys, xs = np.nonzero(image28 > 10)
    crop = image28[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32) / 255
    s = height / 20
    size = (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s)))
    big = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)
    t = np.clip((big - pen) / 0.4, 0, 1)
    return t * t * (3 - 2 * t)                  # smoothstep: a pen's edge, not a blurry blob


def ink_alpha(alpha: np.ndarray, ink: str, rng) -> np.ndarray:
    """Coverage of a stroke in `ink`: pen is nearly opaque, pencil lighter and grainy."""
    if ink == "pencil":
        grain = 1 - 0.35 * rng.random(alpha.shape, dtype=np.float32)
        return alpha * grain * rng.uniform(0.6, 0.85)
    return alpha * rng.uniform(0.85, 1.0)


def text_alpha(font: str, text: str, height: float, rng, slant: float = 0.0) -> np.ndarray:
    """`text` in `font` with its em `height` px, as coverage; turned by a few degrees and
    sheared by `slant` (handwriting)."""
    a = negatives._glyph(font, text, max(8, int(round(height)))).astype(np.float32) / 255
    a = np.pad(a, 6)
    h, w = a.shape
    M = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-3, 3), 1.0)
    M[0, 1] += slant
    M[0, 2] -= slant * h / 2
    pad = int(abs(slant) * h / 2) + 2
    M[0, 2] += pad
    return cv2.warpAffine(a, M, (w + 2 * pad, h))


def _trim(alpha: np.ndarray):
    """(alpha cut to its ink, x offset, y offset)."""
    x, y, w, h = cv2.boundingRect((alpha > 0.05).astype(np.uint8))
    return alpha[y:y + h, x:x + w], x, y


# --- layout -------------------------------------------------------------------------------------

def spacing_for(style: str, rng):
    """(line pitch, grid step, digit height) in sheet px."""
    if style in ("squared", "dotted"):
        q = rng.uniform(30, 48)
        h = q * rng.uniform(0.85, 1.6)
        return q * np.ceil(h / q + 0.9), q, h
    if style == "plain":
        h = rng.uniform(40, 75)
        return h * rng.uniform(1.6, 2.2), h * 1.8, h
    s = rng.uniform(50, 85)
    return s, s, s * rng.uniform(0.6, 0.85)


def write_digits(sheet, rng, images, labels, x0, baseline, height, right, ink, style, grid, pen,
                 slope=0.0):
    """One line of 4-10 digits from x0 with bottoms on `baseline` (rising by `slope` px per px,
    on plain paper), those that fit before `right`; (digit string, boxes (x, y, w, h, index of
    the MNIST digit in `images`), end x). Nothing is
    written if fewer than 3 fit."""
    placed, x = [], x0
    for _ in range(int(rng.integers(4, 11))):
        k = int(rng.integers(len(images)))
        a = ink_alpha(digit_alpha(images[k], height * rng.uniform(0.9, 1.1), pen), ink, rng)
        h, w = a.shape
        if style in ("squared", "dotted"):               # centred in one or two squares
            step = grid * max(1, int(np.ceil((w + 0.2 * grid) / grid)))
            left = x + (step - w) / 2 + rng.uniform(-0.08, 0.08) * grid
        else:
            step, left = w + height * rng.uniform(0.15, 0.45), x
        if left + w > right:
            break
        bottom = (baseline + slope * (left - x0) - rng.uniform(0.0, 0.08) * height
                  + rng.uniform(-0.03, 0.03) * height)
        placed.append((a, int(round(left)), int(round(bottom - h)), str(int(labels[k])), k))
        x += step
    if len(placed) < 3:
        return "", [], x0
    for a, bx, by, _, _ in placed:
        sheet.multiply(a, INKS[ink], bx, by)
    boxes = [(bx, by, a.shape[1], a.shape[0], k) for a, bx, by, _, k in placed]
    end = max(bx + w for bx, _, w, _, _ in boxes)
    return "".join(p[3] for p in placed), boxes, end


def put_text(sheet, rng, font, text, x, baseline, em, colour, right, alpha_scale=1.0, slant=0.0):
    """Text with its ink bottom on `baseline` from x; its box, or None if it ends after `right`."""
    a, _, _ = _trim(text_alpha(font, text, em, rng, slant))
    h, w = a.shape
    if w == 0 or x + w > right or baseline - h < 4:
        return None
    bx, by = int(round(x)), int(round(baseline - h))
    sheet.multiply(a * alpha_scale, colour, bx, by)
    return bx, by, w, h


def hand_text(sheet, rng, text, x, baseline, em, ink, right):
    font = _pick(rng, negatives._fonts_with("hand", text.replace(" ", "")))
    alpha = 0.7 if ink == "pencil" else 0.95
    box = put_text(sheet, rng, font, text, x, baseline, em, INKS[ink], right, alpha,
                   rng.uniform(-0.15, 0.25))
    return box and {"box": box, "kind": "hand", "text": text}


def hand_sign(sheet, rng, sign, x, middle, size, ink, right):
    """A handwritten sign whose larger side is `size` px, centred on height `middle` from x."""
    font = _pick(rng, negatives._fonts_with("hand", sign))
    a, _, _ = _trim(text_alpha(font, sign, 64, rng, rng.uniform(-0.1, 0.2)))
    if a.size == 0:
        return None
    k = size / max(a.shape)
    a = cv2.resize(a, (max(1, round(a.shape[1] * k)), max(1, round(a.shape[0] * k))),
                   interpolation=cv2.INTER_AREA)
    h, w = a.shape
    if x + w > right:
        return None
    bx, by = int(round(x)), int(round(middle - h / 2))
    sheet.multiply(a * (0.7 if ink == "pencil" else 0.95), INKS[ink], bx, by)
    return {"box": (bx, by, w, h), "kind": "hand", "text": sign}


def printed_text(sheet, rng, text, x, baseline, em, right):
    font = _pick(rng, negatives._fonts()[_pick(rng, ("serif", "serif", "sans"))])
    box = put_text(sheet, rng, font, text, x, baseline, em, (40, 40, 40), right, rng.uniform(0.8, 0.95))
    return box and {"box": box, "kind": "printed", "text": text}


def layout(sheet, rng, images, labels, style, ink, area, words=HAND_WORDS, printed=PRINTED):
    """Write the page's lines inside `area` (x0, y0, x1, y1): digit lines, a printed header
    or footer, lines of handwritten words, and marks after some digit lines. Returns
    (truth lines, digit boxes [(box, label, line, MNIST index)], distractors)."""
    x0, y0, x1, y1 = area
    pitch, grid, height = spacing_for(style, rng)
    if style == "margin":                               # the margin line, then the writing
        x0 += rng.uniform(0.06, 0.14) * (x1 - x0)
    rule_sheet(sheet, style, grid if style in ("squared", "dotted") else pitch, y0, x0, rng)
    pen = rng.uniform(0.2, 0.55)
    rows = list(np.arange(y0 + pitch, y1, pitch))
    if style in ("squared", "dotted"):                  # baselines on grid lines
        rows = [y0 + grid * round((r - y0) / grid) for r in rows]
    plan = _plan_rows(rng, len(rows))
    truth, digit_boxes, distractors = [], [], []
    for row, what in zip(rows, plan):
        indent = x0 + rng.uniform(0, 0.12) * (x1 - x0)
        if style in ("squared", "dotted"):
            indent = x0 + grid * round((indent - x0) / grid)
        if what == "printed":
            d = printed_text(sheet, rng, _pick(rng, printed), indent, row - 0.1 * height,
                             height * rng.uniform(0.45, 0.8), x1)
            distractors += [d] if d else []
        elif what == "words":
            text = " ".join(_pick(rng, words) for _ in range(rng.integers(1, 3)))
            d = hand_text(sheet, rng, text, indent, row - 0.05 * height,
                          height * rng.uniform(1.0, 1.3), ink, x1)
            distractors += [d] if d else []
        elif what == "digits":
            slope = rng.uniform(-0.03, 0.03) if style == "plain" else 0.0
            text, boxes, end = write_digits(sheet, rng, images, labels, indent, row, height,
                                            x1, ink, style, grid, pen, slope)
            if not text:                    # no room for a line worth reading
                continue
            line = len(truth)
            truth.append(text)
            digit_boxes += [(b[:4], int(c), line, b[4]) for b, c in zip(boxes, text)]
            if rng.random() < 0.4:          # a sign or word after the line, well apart
                x = end + height * rng.uniform(1.0, 2.5)
                base = row + slope * (x - indent)
                if rng.random() < 0.5:
                    d = hand_sign(sheet, rng, _pick(rng, HAND_SIGNS), x, base - 0.45 * height,
                                  height * rng.uniform(0.4, 0.8), ink, x1)
                else:
                    d = hand_text(sheet, rng, _pick(rng, words), x, base - 0.05 * height,
                                  height * rng.uniform(0.9, 1.2), ink, x1)
                distractors += [d] if d else []
    return truth, digit_boxes, distractors


def _plan_rows(rng, n: int) -> list:
    """What goes on each of n rows: mostly digit lines, sometimes empty rows, a printed line
    (header or footer) and a line of handwritten words."""
    plan = [_pick(rng, ("digits", "digits", "digits", "empty")) for _ in range(n)]
    if n >= 4 and rng.random() < 0.6:
        plan[0 if rng.random() < 0.7 else n - 1] = "printed"
    if n >= 5 and rng.random() < 0.5:
        plan[int(rng.integers(1, n - 1))] = "words"
    digit_rows = [i for i, p in enumerate(plan) if p == "digits"]
    if len(digit_rows) > 7:                         # at most 7 lines of digits
        for i in rng.choice(digit_rows, len(digit_rows) - 7, replace=False):
            plan[i] = "empty"
    for i in range(n):                              # and at least 3
        if sum(p == "digits" for p in plan) >= 3:
            break
        if plan[i] == "empty":
            plan[i] = "digits"
    return plan


# --- the photo ----------------------------------------------------------------------------------

def camera(sheet_img: np.ndarray, out_size, tilt: float, rng):
    """Photograph the sheet: (uint8 BGR photo, 3x3 homography sheet -> photo)."""
    W, H = out_size
    h, w = sheet_img.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), -tilt, rng.uniform(0.97, 1.02))
    turn[:, 2] += (W - w) / 2, (H - h) / 2
    M = np.vstack([turn, [0, 0, 1]])
    frame = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
    jitter = rng.uniform(-0.03, 0.03, (4, 2)) * (W, H)
    M = cv2.getPerspectiveTransform(frame, (frame + jitter).astype(np.float32)) @ M
    desk = np.float32(_pick(rng, DESKS)) / 255
    photo = cv2.warpPerspective(sheet_img, M, (W, H), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(c) for c in desk))
    photo *= lighting(W, H, rng)[..., None] * rng.uniform(0.93, 1.05, 3).astype(np.float32)
    photo = cv2.GaussianBlur(photo, (0, 0), rng.uniform(0.5, 1.2))
    photo = photo * 255 + rng.standard_normal(photo.shape, dtype=np.float32) * rng.uniform(1.5, 4.0)
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 91))])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR), M


def lighting(W: int, H: int, rng) -> np.ndarray:
    """Light falling on the sheet: a gradient, a vignette and sometimes a soft shadow."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    x, y = x / W - 0.5, y / H - 0.5
    g = rng.uniform(-0.18, 0.18, 2)
    light = 1 + g[0] * x + g[1] * y - rng.uniform(0.0, 0.25) * (x * x + y * y)
    if rng.random() < 0.4:
        c, r = rng.uniform(-0.5, 0.5, 2), rng.uniform(0.15, 0.4)
        light -= rng.uniform(0.08, 0.25) * np.exp(-((x - c[0]) ** 2 + (y - c[1]) ** 2) / (2 * r * r))
    return light * rng.uniform(0.88, 1.0)


def _map_box(box, M) -> list:
    x, y, w, h = box
    c = cv2.perspectiveTransform(np.float32([[[x, y], [x + w, y], [x + w, y + h], [x, y + h]]]), M)[0]
    lo, hi = np.floor(c.min(0)), np.ceil(c.max(0))
    return [int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1])]


# --- pages --------------------------------------------------------------------------------------

def make_page(rng_or_seed, digits_images, digits_labels, style: str = "ruled", tilt=None,
              ink=None, paper=None, words=HAND_WORDS, printed=PRINTED):
    """One synthetic photo: (uint8 BGR image, truth lines top to bottom, info).

    digits_images / digits_labels: MNIST test digits (uint8 [N,28,28] white on black) and labels.
    style: one of STYLES; tilt: degrees the sheet is turned (default random within +-8);
    ink: one of INKS, paper: one of PAPERS (default random); words, printed: the handwritten
    words and the printed lines to draw from.
    info: style, tilt, ink, paper, size, digit height and line pitch (sheet px), the digits'
    boxes (x, y, w, h in the photo) with label, line and MNIST index ("mnist", in the set drawn from), and the
    distractors' boxes, kind, text.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    rng = _rng(rng_or_seed)
    tilt = float(rng.uniform(-8, 8)) if tilt is None else float(tilt)
    ink = ink or _pick(rng, tuple(INKS))
    paper = paper or _pick(rng, tuple(PAPERS) if style != "plain" else ("white", "cream", "yellow"))
    W = int(rng.integers(1200, 1601))
    H = int(round(W * 0.75))
    sheet = Sheet(int(W * rng.uniform(1.0, 1.1)), int(H * rng.uniform(1.0, 1.1)), PAPERS[paper], rng)
    area = writing_area(sheet.w, sheet.h, W, H, tilt)
    truth, digits, distractors = layout(sheet, rng, np.asarray(digits_images),
                                        np.asarray(digits_labels), style, ink, area, words, printed)
    image, M = camera(sheet.img, (W, H), tilt, rng)
    info = {"style": style, "tilt": round(tilt, 2), "ink": ink, "paper": paper, "size": [W, H],
            "digits": [{"box": _map_box(b, M), "label": c, "line": i, "mnist": int(k)}
                       for b, c, i, k in digits],
            "distractors": [{**d, "box": _map_box(d["box"], M)} for d in distractors]}
    return image, truth, info


def writing_area(sw: int, sh: int, W: int, H: int, tilt: float):
    """A rectangle of the sheet, centred, that stays inside the photo once turned by `tilt`."""
    c, s = abs(np.cos(np.deg2rad(tilt))), abs(np.sin(np.deg2rad(tilt)))
    w, h = 0.86 * W, 0.84 * H
    shrink = min(1.0, 0.9 * W / (w * c + h * s), 0.9 * H / (w * s + h * c))
    w, h = w * shrink, h * shrink
    return (sw - w) / 2, (sh - h) / 2, (sw + w) / 2, (sh + h) / 2


@lru_cache(maxsize=2)
def _mnist_digits(mnist_dir, split: str = "test"):
    from edgedigits.train.data import load_mnist

    train_images, train_labels, test_images, test_labels = load_mnist(mnist_dir, allow_download=False)
    if split == "train":
        return train_images, train_labels
    if split == "test":
        return test_images, test_labels
    raise ValueError(f"digits must be 'test' or 'train', got {split!r}")


def make_pages(n: int, seed: int = 0, mnist_dir=None, digits: str = "test") -> list:
    """n pages [(image, truth lines, info)] from the MNIST test digits ($EDGEDIGITS_DATA or
    `mnist_dir`), cycling through the styles and inks; page i depends only on (seed, i).
    digits="train" writes the training digits instead, with other words and print
    (`TRAIN_WORDS`, `TRAIN_PRINTED`): pages to harvest crops from and train on (`edgedigits
    harvest`), never to measure with."""
    images, labels = _mnist_digits(str(mnist_dir) if mnist_dir else None, digits)
    words, printed = (TRAIN_WORDS, TRAIN_PRINTED) if digits == "train" else (HAND_WORDS, PRINTED)
    ink_names = tuple(INKS)
    return [make_page(np.random.default_rng([seed, i]), images, labels, STYLES[i % len(STYLES)],
                      ink=ink_names[i % len(ink_names)], words=words, printed=printed) for i in range(n)]


def write_pages(out_dir, n: int, seed: int = 0, mnist_dir=None, digits: str = "test") -> Path:
    """Write n pages as PNGs into out_dir with labels.csv (filename, digits, lines joined by |,
    ...) as `edgedigits eval-paper` reads it, and info.json with every page's boxes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, infos = [], {}
    for i, (image, lines, info) in enumerate(make_pages(n, seed, mnist_dir, digits)):
        name = f"synth_{seed}_{i:03d}.png"
        cv2.imwrite(str(out / name), image)
        rows.append({"filename": name, "digits": "".join(lines), "lines": "|".join(lines),
                     "n_digits": len("".join(lines)), "style": info["style"], "ink": info["ink"],
                     "paper": info["paper"], "tilt": info["tilt"]})
        infos[name] = info
    with open(out / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["filename", "lines"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "info.json").write_text(json.dumps(infos, indent=1))
    return out
