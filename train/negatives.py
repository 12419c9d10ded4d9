"""Synthetic "not a digit" crops: the 11th class that lets the page reader skip every mark on a
sheet that is not a handwritten digit.

Each crop is made the way the reader makes its crops: a mark is drawn at the size it has in a
photo of a page (a digit there is 18-60 px tall), photographed (ink strength from pencil to pen,
blur, sensor noise), cut out as the reader cuts a blob (ink darkness over a hysteresis threshold,
only the mark's own connected components, `runtime.digits.blob_ink`) and passed through
`runtime.normalize.normalize_digit(..., ink="white")`, so it is fitted into 20x20 and centred by
centre of mass in 28x28 exactly like a digit the reader feeds the model.

The kinds (`KINDS`), each with its share (`KIND_WEIGHTS`):

printed (fonts from `find_fonts`, slight rotation and perspective like a phone photo, 12-48 px)
    printed_digit_serif   0-9 in newspaper-like serif faces (sudoku givens, printed forms)
    printed_digit_sans    0-9 in sans, bold and typewriter faces
    printed_letter        single letters
    printed_fragment      2-3 letter pieces of words, abbreviations, short printed words
handwriting fonts (augmented like MNIST: rotation +-15 deg, shear, scale, elastic, pen width)
    hand_letter           letters, mostly x X e n d J s t ...
    hand_confusable       letters and signs written like a digit (`CONFUSABLE`: l I ~ 1, O o ~ 0,
                          S ~ 5, Z z ~ 2, g q ~ 9, b ~ 6, B ~ 8, / | and the integral sign ~ 1):
                          a small share, and a kind of its own so that a trainer can weight it down
    hand_operator         + - = : x (times) (divide) < > ~
    hand_symbol           & ? ! % ( ) # * @ $ (check mark)
drawn with OpenCV (pen strokes 6-13% of a digit's height wide, rules 1.5-5%)
    line                  line fragments, straight or slightly bent (rules, underlines); never
                          within 35 deg of vertical, where a straight bar *is* a handwritten 1
    wavy_line             long wavy lines
    dotted_line           dotted and dashed lines
    grid_crossing         + T L crossings of thin rules, sometimes with a handwritten tail
    box                   boxes and partial boxes (U, corners), ruled or hand drawn
    crossed_box           an X inside a square, a square struck through, a bare big X
    tick                  check marks
    dots                  1-3 dots or specks
    blob                  ink smears, filled irregular shapes
    scribble              cross-out zigzags and loopy scribbles
    bracket               [ ] { } ( ) < > drawn clearly bent or with serifs
    arrow                 arrows at any angle but near vertical, one or two heads

Everything is drawn from one `numpy.random.Generator` seeded with `seed`: the same seed gives the
same crops (with the same fonts installed). Rendered glyphs are cached per font, text and size.
Only numpy, OpenCV and Pillow (for fonts) are used.
"""

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from edgedigits.errors import EdgeDigitsError
from edgedigits.runtime.normalize import normalize_digit

KINDS = (
    "printed_digit_serif", "printed_digit_sans", "printed_letter", "printed_fragment",
    "hand_letter", "hand_confusable", "hand_operator", "hand_symbol", "hand_word",
    "line", "wavy_line", "dotted_line", "grid_crossing", "box", "crossed_box",
    "tick", "dots", "blob", "scribble", "bracket", "arrow",
)
# relative shares: serif digits and handwritten letters are the commonest distractors on a page;
# marks that look like digits are kept few
KIND_WEIGHTS = {kind: 1.0 for kind in KINDS} | {
    "printed_digit_serif": 1.5, "hand_letter": 1.5, "hand_confusable": 0.4, "hand_word": 2.0}

# handwritten characters that can be written exactly like a digit (1 1 0 0 5 2 2 9 9 6 8 1 1 1)
CONFUSABLE = "lIOoSZzgqbB/|\u222b"
CONFUSABLE_KINDS = ("hand_confusable",)

# Debian packages that provide the fonts `find_fonts` looks for (DejaVu comes with most systems)
FONT_PACKAGES = (
    "fonts-dejavu-core", "fonts-liberation2", "fonts-freefont-ttf", "fonts-urw-base35",
    "fonts-dkg-handwriting", "fonts-breip", "fonts-rufscript",
    "fonts-humor-sans", "fonts-comic-neue", "fonts-dancingscript", "fonts-kristi", "fonts-bwht",
    "fonts-tlwg-purisa-ttf", "fonts-tomsontalks", "fonts-sjfonts",
)

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
# font file name prefixes (lower case) of each group: Times-, Century Schoolbook-, Bookman- and
# Palatino-like serifs; sans, bold and typewriter faces; handwriting and comic faces
FONT_GROUPS = {
    "serif": ("nimbusroman-", "c059-", "urwbookman-", "p052-", "dejavuserif", "liberationserif-",
              "freeserif"),
    "sans": ("nimbussans-", "nimbussansnarrow-", "urwgothic-", "dejavusans", "liberationsans-",
             "freesans", "liberationmono-", "nimbusmonops-", "freemono"),
    "hand": ("dkg", "breip", "rufscript", "humor-sans", "comicneue-",
             "dancingscript-", "kristi", "becausewe", "purisa", "tomsontalks", "delphine",
             "stevehand"),
}

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
HAND_FAVOURITES = "xXendJst"            # drawn three times as often as other letters
OPERATORS = "+-=:\u00d7\u00f7<>~"
SYMBOLS = "&?!%()#*@$\u2713"
FRAGMENTS = (
    "th", "he", "in", "er", "an", "re", "on", "at", "en", "nd", "ti", "es", "or", "te", "of", "ed",
    "is", "it", "al", "ar", "st", "to", "nt", "ng", "the", "and", "ing", "ion", "ent", "for",
    "her", "ate", "ver", "No", "Nr", "Tel", "km", "kg", "cm", "mm", "p.", "Fig", "Mr", "Dr",
    "etc", "ca.", "vs", "a)", "b)", "(c)", "No.", "cf.", "Ex", "Q:", "A:", "x=", "y=", "Name",
)

WORDS = (
    "the", "and", "you", "was", "for", "are", "with", "his", "they", "have", "from", "one", "had",
    "word", "what", "were", "when", "your", "can", "said", "each", "she", "which", "their",
    "und", "ich", "die", "der", "das", "ein", "wir", "mit", "sehr", "viel", "nicht", "auch",
    "liebe", "gruss", "hier", "dann", "noch", "nach", "wie", "aber", "schon", "dx", "xdx",
    "sin", "cos", "log", "lim", "max", "min", "exp", "area", "sum", "name", "date", "total",
)
SS = 4                      # supersampling of drawn geometry
RENDER_SIZES = (16, 24, 32, 48, 64, 96)   # font sizes glyphs are rendered (and cached) at


# --- fonts --------------------------------------------------------------------------------------

def find_fonts(dirs=FONT_DIRS) -> dict:
    """{"serif": [...], "sans": [...], "hand": [...]}: font files found under `dirs`, sorted.

    Raises EdgeDigitsError naming the Debian packages to install if a group has none.
    """
    files = sorted({p for d in dirs for ext in ("ttf", "otf") if Path(d).expanduser().is_dir()
                    for p in Path(d).expanduser().rglob(f"*.{ext}")})
    groups = {g: [str(p) for p in files if p.name.lower().startswith(prefixes)]
              for g, prefixes in FONT_GROUPS.items()}
    missing = [g for g, paths in groups.items() if not paths]
    if missing:
        raise EdgeDigitsError(
            f"no {'/'.join(missing)} fonts found under {', '.join(dirs)}; install them with: "
            f"apt-get install {' '.join(FONT_PACKAGES)}")
    return groups


@lru_cache(maxsize=None)
def _fonts() -> dict:
    return find_fonts()


@lru_cache(maxsize=1024)
def _font(path: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, px)


@lru_cache(maxsize=8192)
def _glyph(path: str, text: str, px: int) -> np.ndarray:
    """`text` in the font at `px`, white on black uint8, trimmed to its ink (read-only, cached)."""
    font = _font(path, px)
    x0, y0, x1, y1 = font.getbbox(text)
    img = Image.new("L", (max(1, x1 - x0), max(1, y1 - y0)))
    ImageDraw.Draw(img).text((-x0, -y0), text, font=font, fill=255)
    a = np.asarray(img)
    a.flags.writeable = False
    return a


@lru_cache(maxsize=None)
def has_glyph(path: str, ch: str) -> bool:
    """Whether the font draws `ch` (not empty, not the font's "missing glyph" box)."""
    a = _glyph(path, ch, 32)
    if a.max() == 0:
        return False
    missing = _glyph(path, "\uffff", 32)
    return not (a.shape == missing.shape and np.array_equal(a, missing))


@lru_cache(maxsize=None)
def _fonts_with(group: str, text: str) -> tuple:
    """The fonts of `group` that draw every character of `text` (and any other font that does
    when the group has fewer than three)."""
    def draws(p):
        return all(has_glyph(p, c) for c in text if c != " ")

    paths = [p for p in _fonts()[group] if draws(p)]
    if len(paths) < 3:                      # too few for variety: add every other font that does
        paths += [p for g in FONT_GROUPS if g != group for p in _fonts()[g] if draws(p)]
    if not paths:
        raise EdgeDigitsError(f"no installed font draws {text!r}; install {' '.join(FONT_PACKAGES)}")
    return tuple(paths)


# --- geometry helpers ---------------------------------------------------------------------------

def _rotation(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])


def _shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)


def _hand_affine(rng) -> np.ndarray:
    """MNIST-style augmentation: rotation +-15 deg, shear +-17 deg, scale 0.85-1.15 per axis."""
    shear = np.array([[1, np.tan(np.deg2rad(rng.uniform(-17, 17))), 0], [0, 1, 0], [0, 0, 1]])
    scale = np.diag([rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15), 1])
    return _rotation(rng.uniform(-15, 15)) @ shear @ scale


def _perspective(rng, size: float, amount: float) -> np.ndarray:
    """A homography moving the corners of a centred square of `size` by up to `amount` * size."""
    s = size / 2
    src = np.float32([[-s, -s], [s, -s], [s, s], [-s, s]])
    dst = src + rng.uniform(-amount, amount, (4, 2)).astype(np.float32) * size
    return cv2.getPerspectiveTransform(src, dst).astype(np.float64)


def _warp(src: np.ndarray, M: np.ndarray, margin: int) -> np.ndarray:
    """`src` (float) mapped by M (whose origin is src's centre) onto a canvas just holding it."""
    h, w = src.shape
    M = M @ _shift(-w / 2, -h / 2)
    corners = cv2.perspectiveTransform(np.float32([[[0, 0], [w, 0], [w, h], [0, h]]]), M)[0]
    lo = np.floor(corners.min(0)) - margin
    size = np.ceil(corners.max(0) - lo) + margin
    return cv2.warpPerspective(src, _shift(-lo[0], -lo[1]) @ M, (int(size[0]), int(size[1])),
                               flags=cv2.INTER_LINEAR)


def _elastic(a: np.ndarray, rng, alpha: float) -> np.ndarray:
    """A smooth random displacement of up to about `alpha` px (a coarse 4x4 field, upsampled)."""
    h, w = a.shape
    field = rng.standard_normal((2, 4, 4)).astype(np.float32) * alpha
    dx = cv2.resize(field[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(field[1], (w, h), interpolation=cv2.INTER_CUBIC)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(a, gx + dx, gy + dy, cv2.INTER_LINEAR)


def _pen_width(rng, H: float) -> float:
    return max(1.0, H * rng.uniform(0.06, 0.13))


def _rule_width(rng, H: float) -> float:
    return max(0.7, H * rng.uniform(0.015, 0.05))


# --- the photo and the reader's cut -------------------------------------------------------------

def photograph(ink: np.ndarray, rng) -> np.ndarray:
    """What the page reader cuts out of a photo of `ink` (float white-on-black at page scale).

    Ink strength from faint pencil to pen, out-of-focus blur, sensor noise; then, as the reader
    does (`runtime.ink`, `runtime.digits.blob_ink`): darkness over a weak threshold, kept only in
    connected components that hold certain (strong) ink, scaled so full ink is 1.
    """
    strength = rng.uniform(0.45, 1.0)
    a = cv2.GaussianBlur(_pad(ink, 4) * strength, (0, 0), rng.uniform(0.3, 1.1))
    noise = rng.uniform(0.005, 0.04)
    a += rng.standard_normal(a.shape, dtype=np.float32) * noise
    strong = 0.5 * strength
    weak = min(max(5 * noise, 0.08), 0.8 * strong)
    n, labels = cv2.connectedComponents((a > weak).astype(np.uint8), connectivity=8)
    hit = np.zeros(n, bool)
    hit[labels[a > strong]] = True
    hit[0] = False
    return np.clip(a * (1.0 / strength), 0, 1) * hit[labels]


def _pad(a: np.ndarray, m: int) -> np.ndarray:
    return cv2.copyMakeBorder(a, m, m, m, m, cv2.BORDER_CONSTANT, value=0)


# --- glyph marks --------------------------------------------------------------------------------

def _render_size(em: float) -> int:
    """The smallest cached font size at least `em` px (so warping only shrinks, by < 1.5x)."""
    return next((s for s in RENDER_SIZES if s >= em), RENDER_SIZES[-1])


def printed_mark(rng, font: str, text: str) -> np.ndarray:
    """Printed `text` as a phone sees it: 12-48 px em, rotated +-5 deg, slight perspective."""
    em = rng.uniform(12, 48)
    px = _render_size(em)
    src = _glyph(font, text, px).astype(np.float32) * (1 / 255)
    M = _perspective(rng, em, 0.06) @ _rotation(rng.uniform(-5, 5)) @ np.diag([em / px, em / px, 1])
    return _warp(src, M, margin=4)


def hand_mark(rng, font: str, text: str) -> np.ndarray:
    """Handwriting-font `text` augmented like MNIST digits: pen width, affine, elastic."""
    em = rng.uniform(20, 66)                  # a digit on the page is 18-60 px tall
    px = _render_size(em)
    src = _glyph(font, text, px).astype(np.float32) * (1 / 255)
    src = _pen_change(src, rng, px)
    M = (_perspective(rng, em, 0.03) @ _hand_affine(rng) @ np.diag([em / px, em / px, 1]))
    out = _warp(src, M, margin=4 + int(0.08 * em))
    return _elastic(out, rng, alpha=0.025 * em)


def _pen_change(src: np.ndarray, rng, px: int) -> np.ndarray:
    """Thicker (40%) or thinner (15%) strokes, by about 2-7% of the font size."""
    u = rng.random()
    k = int(round(px * rng.uniform(0.02, 0.07)))
    if k < 1 or u > 0.55:
        return src
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k + 1, k + 1))
    if u < 0.4:
        return cv2.dilate(_pad(src, k), kernel)
    thin = cv2.erode(src, kernel)
    return thin if thin.max() > 0.5 else src


def _weighted_char(rng, chars: str, favourites: str = "", down: str = "", down_w: float = 0.3):
    w = np.array([3.0 if c in favourites else down_w if c in down else 1.0 for c in chars])
    return chars[rng.choice(len(chars), p=w / w.sum())]


def _pick(rng, seq):
    return seq[rng.integers(len(seq))]


def printed_digit_serif(rng):
    return printed_mark(rng, _pick(rng, _fonts()["serif"]), str(rng.integers(10)))


def printed_digit_sans(rng):
    return printed_mark(rng, _pick(rng, _fonts()["sans"]), str(rng.integers(10)))


def printed_letter(rng):
    ch = _weighted_char(rng, LETTERS, down=CONFUSABLE)
    return printed_mark(rng, _pick(rng, _fonts()[_pick(rng, ("serif", "serif", "sans"))]), ch)


def printed_fragment(rng):
    text = _pick(rng, FRAGMENTS)
    return printed_mark(rng, _pick(rng, _fonts()[_pick(rng, ("serif", "serif", "sans"))]), text)


def hand_letter(rng):
    ch = _weighted_char(rng, "".join(c for c in LETTERS if c not in CONFUSABLE), HAND_FAVOURITES)
    return hand_mark(rng, _pick(rng, _fonts_with("hand", ch)), ch)


def hand_confusable(rng):
    ch = _pick(rng, CONFUSABLE)
    return hand_mark(rng, _pick(rng, _fonts_with("hand", ch)), ch)


def hand_word(rng):
    """A handwritten word, or a piece of one: the reader meets cursive words whole when they
    stand apart and cut into 1-3 letter pieces when it splits them."""
    word = _pick(rng, WORDS) if rng.random() < 0.7 else "".join(
        _pick(rng, "abcdeghkmnrstuvwxyz") for _ in range(rng.integers(2, 6)))
    ink = hand_mark(rng, _pick(rng, _fonts_with("hand", word)), word)
    cols = np.flatnonzero(ink.max(0) > 0.3)
    if cols.size and rng.random() < 0.5:                  # a piece of it
        w = cols[-1] - cols[0] + 1
        piece = max(4, int(w * rng.uniform(0.3, 0.7)))
        x0 = cols[0] + int(rng.integers(0, max(1, w - piece)))
        ink = ink[:, x0:x0 + piece]
    return ink


def hand_operator(rng):
    ch = _pick(rng, OPERATORS)
    return hand_mark(rng, _pick(rng, _fonts_with("hand", ch)), ch)


def hand_symbol(rng):
    ch = _pick(rng, SYMBOLS)
    return hand_mark(rng, _pick(rng, _fonts_with("hand", ch)), ch)


# --- drawn marks --------------------------------------------------------------------------------
# Each returns a list of drawing operations in page pixels: ("path", points, width, closed),
# ("fill", points) or ("dot", centre, radius); `draw` renders them supersampled.

def draw(ops: list, margin: int = 4) -> np.ndarray:
    """Render drawing operations (page px, any origin) as float ink on a canvas just holding them."""
    pts = np.concatenate([np.asarray(op[1], np.float64).reshape(-1, 2) for op in ops])
    reach = max([op[2] / 2 if op[0] == "path" else op[2] if op[0] == "dot" else 0 for op in ops])
    lo = np.floor(pts.min(0) - reach) - margin
    w, h = (np.ceil(pts.max(0) + reach - lo) + margin).astype(int)
    canvas = np.zeros((h * SS, w * SS), np.uint8)
    for op in ops:
        if op[0] == "path":
            p = _fixed(op[1], lo)
            cv2.polylines(canvas, [p], op[3], 255, max(1, int(round(op[2] * SS))), cv2.LINE_AA, 4)
        elif op[0] == "fill":
            cv2.fillPoly(canvas, [_fixed(op[1], lo)], 255, cv2.LINE_AA, 4)
        else:
            c = _fixed(np.reshape(op[1], (1, 2)), lo)[0]
            r = max(1, int(round(op[2] * SS * 16)))
            cv2.circle(canvas, (int(c[0]), int(c[1])), r, 255, -1, cv2.LINE_AA, 4)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) * (1 / 255)


def _fixed(points, lo) -> np.ndarray:
    """Page points as OpenCV fixed-point (4 fractional bits) on the supersampled canvas."""
    return np.round((np.asarray(points, np.float64) - lo) * SS * 16).astype(np.int32)


def _rotate(points, deg: float, centre=(0.0, 0.0)) -> np.ndarray:
    t = np.deg2rad(deg)
    R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    c = np.asarray(centre, np.float64)
    return (np.asarray(points, np.float64) - c) @ R.T + c


def _curve(points, n: int = 12) -> np.ndarray:
    """A smooth path through `points` (Catmull-Rom, n samples per segment)."""
    p = np.asarray(points, np.float64)
    if len(p) < 3:
        return p
    q = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    t = np.linspace(0, 1, n, endpoint=False)[:, None]
    segs = []
    for i in range(1, len(q) - 2):
        p0, p1, p2, p3 = q[i - 1], q[i], q[i + 1], q[i + 2]
        segs.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                           + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3))
    return np.vstack(segs + [p[-1:]])


def _wobbly(rng, a, b, amount: float, n: int = 4) -> np.ndarray:
    """A hand-drawn stroke from a to b: points along it nudged sideways by up to `amount`."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.linspace(0, 1, n)[:, None]
    normal = np.array([-(b - a)[1], (b - a)[0]]) / max(np.linalg.norm(b - a), 1e-6)
    side = rng.uniform(-amount, amount, (n, 1)) * np.sin(np.pi * t)
    return _curve(a + (b - a) * t + side * normal)


def _bent(a, b, sag: float, n: int = 16) -> np.ndarray:
    """A stroke from a to b bowed sideways by `sag` px in the middle (a parabola)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.linspace(0, 1, n)[:, None]
    normal = np.array([-(b - a)[1], (b - a)[0]]) / max(np.linalg.norm(b - a), 1e-6)
    return a + (b - a) * t + 4 * sag * t * (1 - t) * normal


def _stroke_width(rng, H: float, p_rule: float) -> float:
    return _rule_width(rng, H) if rng.random() < p_rule else _pen_width(rng, H)


def _not_vertical(rng, limit: float = 55.0) -> float:
    """An angle (deg from horizontal) at least 90 - limit degrees away from vertical."""
    return rng.uniform(-limit, limit)


def line(rng, H):
    L = H * rng.uniform(1.0, 5.0)
    ends = _rotate([(-L / 2, 0), (L / 2, 0)], _not_vertical(rng))
    sag = L * rng.uniform(-0.06, 0.06) * (rng.random() < 0.5)
    return [("path", _bent(ends[0], ends[1], sag), _stroke_width(rng, H, 0.6), False)]


def wavy_line(rng, H):
    L = H * rng.uniform(1.5, 5.0)
    x = np.linspace(-L / 2, L / 2, 64)
    periods, amp = rng.uniform(1.5, 5.0), H * rng.uniform(0.06, 0.25)
    y = amp * np.sin(2 * np.pi * periods * (x + L / 2) / L + rng.uniform(0, 2 * np.pi))
    pts = _rotate(np.stack([x, y], 1), rng.uniform(-30, 30))
    return [("path", pts, _stroke_width(rng, H, 0.3), False)]


def dotted_line(rng, H):
    L = H * rng.uniform(1.2, 5.0)
    step = L / rng.integers(3, 9)   # 3-8 gaps: they stay visible once fitted into 20x20
    width = min(_stroke_width(rng, H, 0.5), 0.4 * step)
    angle = _not_vertical(rng, 45)
    starts = np.arange(-L / 2, L / 2 + 1e-6, step)
    if rng.random() < 0.5:          # dots
        pts = _rotate(np.stack([starts, np.zeros_like(starts)], 1), angle)
        return [("dot", p, max(0.6, width * rng.uniform(0.5, 0.9))) for p in pts]
    dash = step * rng.uniform(0.35, 0.65)
    return [("path", _rotate([(s, 0), (s + dash, 0)], angle), width, False) for s in starts[:-1]]


def grid_crossing(rng, H):
    """+, T or L of thin rules (mostly axis-aligned), arms of comparable length."""
    shape = _pick(rng, ("+", "T", "L"))
    first = rng.integers(4)
    arms = {"+": [0, 1, 2, 3], "T": [0, 1, 2], "L": [0, 1]}[shape]
    width = _stroke_width(rng, H, 0.8)
    base = rng.uniform(0.4, 1.4) * H
    ops = []
    for k in arms:
        angle = 90 * ((first + k) % 4) + rng.uniform(-3, 3)
        end = _rotate([(base * rng.uniform(0.6, 1.6), 0)], angle)[0]
        ops.append(("path", [(0, 0), end], width, False))
    if rng.random() < 0.35:         # a handwritten stroke through or from the crossing
        a = _rotate([(H * rng.uniform(-0.2, 0.2), 0)], rng.uniform(0, 360))[0]
        b = a + _rotate([(H * rng.uniform(0.3, 0.8), 0)], rng.uniform(0, 360))[0]
        ops.append(("path", _wobbly(rng, a, b, 0.15 * H), _pen_width(rng, H), False))
    return _rotate_ops(ops, rng.uniform(-10, 10))


def _rotate_ops(ops: list, deg: float) -> list:
    return [(op[0], _rotate(np.asarray(op[1], np.float64).reshape(-1, 2), deg)) + tuple(op[2:])
            for op in ops]


def _box_sides(rng, H, hand: bool, drop: int = 0) -> list:
    w, h = H * rng.uniform(0.7, 1.6), H * rng.uniform(0.7, 1.6)
    corners = np.array([(0, 0), (w, 0), (w, h), (0, h)]) - (w / 2, h / 2)
    width = _pen_width(rng, H) if hand else _rule_width(rng, H)
    first = int(rng.integers(4))           # drop `drop` adjacent sides: U, L or corner shapes
    sides = [(first + k) % 4 for k in range(drop, 4)]
    ops = []
    for k in sides:
        a, b = corners[k], corners[(k + 1) % 4]
        if hand:                    # hand-drawn sides overshoot the corners a little
            d = (b - a) / np.linalg.norm(b - a) * H * rng.uniform(-0.05, 0.1)
            ops.append(("path", _wobbly(rng, a - d, b + d, 0.04 * H), width, False))
        else:
            ops.append(("path", [a, b], width, False))
    return ops, corners


def box(rng, H):
    ops, _ = _box_sides(rng, H, hand=rng.random() < 0.5, drop=_pick(rng, (0, 0, 1, 2)))
    return _rotate_ops(ops, rng.uniform(-8, 8))


def crossed_box(rng, H):
    u = rng.random()
    pen = _pen_width(rng, H)
    if u < 0.25:                    # a big handwritten X alone
        s = H * rng.uniform(0.6, 1.4)
        ops = [("path", _wobbly(rng, (-s / 2, -s / 2), (s / 2, s / 2), 0.08 * s), pen, False),
               ("path", _wobbly(rng, (s / 2, -s / 2), (-s / 2, s / 2), 0.08 * s), pen, False)]
        return _rotate_ops(ops, rng.uniform(-15, 15))
    ops, c = _box_sides(rng, H, hand=rng.random() < 0.5)
    over = rng.uniform(-0.1, 0.15, (4, 2)) * H
    ops.append(("path", _wobbly(rng, c[0] - over[0], c[2] + over[2], 0.06 * H), pen, False))
    if u > 0.4:                     # both diagonals (else: struck through once)
        ops.append(("path", _wobbly(rng, c[1] + over[1] * (1, -1), c[3] - over[3] * (1, -1),
                                    0.06 * H), pen, False))
    return _rotate_ops(ops, rng.uniform(-8, 8))


def tick(rng, H):
    s = H * rng.uniform(0.5, 1.3)
    pts = np.array([(0, 0.55), (0.35, 1.0), (1.0, -0.2 + rng.uniform(-0.2, 0.2))]) * s
    pts += rng.uniform(-0.06, 0.06, pts.shape) * s
    path = _curve([pts[0], (pts[0] + pts[1]) / 2, pts[1], (pts[1] + pts[2]) / 2, pts[2]], 8)
    return _rotate_ops([("path", path, _pen_width(rng, H), False)], rng.uniform(-15, 15))


def dots(rng, H):
    k = int(rng.integers(1, 4))
    spread = H * rng.uniform(0.2, 0.9)
    return [("dot", rng.uniform(0, spread, 2), H * rng.uniform(0.05, 0.15)) for _ in range(k)]


def blob(rng, H):
    n = int(rng.integers(8, 15))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = H * rng.uniform(0.1, 0.5) * (1 + 0.3 * rng.uniform(-1, 1, n))
    pts = np.stack([r * np.cos(t), r * rng.uniform(0.5, 1.0) * np.sin(t)], 1)   # chunky, not a bar
    return _rotate_ops([("fill", _curve(np.vstack([pts, pts[:1]]), 4))], rng.uniform(0, 180))


def scribble(rng, H):
    w, h = H * rng.uniform(0.6, 2.0), H * rng.uniform(0.3, 1.0)
    if rng.random() < 0.5:          # a cross-out zigzag
        k = int(rng.integers(4, 11))
        xs = np.linspace(-w / 2, w / 2, k) + rng.uniform(-0.05, 0.05, k) * w
        ys = np.where(np.arange(k) % 2 == 0, -h / 2, h / 2) + rng.uniform(-0.1, 0.1, k) * h
        pts = np.stack([xs, ys], 1)
    else:                           # a loopy scribble
        pts = rng.uniform(-0.5, 0.5, (int(rng.integers(8, 17)), 2)) * (w, h)
    return _rotate_ops([("path", _curve(pts, 8), _pen_width(rng, H), False)], rng.uniform(-20, 20))


def bracket(rng, H):
    h = H * rng.uniform(0.8, 1.6)
    kind = _pick(rng, "[]{}()<>")
    flip = -1 if kind in "]})>" else 1
    if kind in "[]":
        s = h * rng.uniform(0.3, 0.5)
        pts = [(s, -h / 2), (0, -h / 2), (0, h / 2), (s, h / 2)]
    elif kind in "{}":
        s = h * rng.uniform(0.15, 0.3)
        pts = _curve([(s, -h / 2), (0, -h / 3), (0, -h / 10), (-s, 0), (0, h / 10), (0, h / 3),
                      (s, h / 2)], 6)
    elif kind in "()":
        pts = _bent((0, -h / 2), (0, h / 2), h * rng.uniform(0.18, 0.3))
        pts[:, 0] = np.abs(pts[:, 0]) * -1
    else:
        s = h * rng.uniform(0.4, 0.8)
        pts = [(s, -h / 2), (0, 0), (s, h / 2)]
    pts = np.asarray(pts, np.float64) * (flip, 1)
    return _rotate_ops([("path", pts, _stroke_width(rng, H, 0.2), False)], rng.uniform(-10, 10))


def arrow(rng, H):
    L = H * rng.uniform(0.8, 3.0)
    angle = rng.uniform(-70, 70) + _pick(rng, (0, 180))      # never within 20 deg of vertical
    width = _pen_width(rng, H)
    shaft = _bent((0, 0), (L, 0), L * rng.uniform(-0.1, 0.1) * (rng.random() < 0.4))
    ops = [("path", shaft, width, False)]
    heads = [(shaft[-1], shaft[-2])] + ([(shaft[0], shaft[1])] if rng.random() < 0.2 else [])
    for tip, before in heads:
        d = (before - tip) / np.linalg.norm(before - tip) * L * rng.uniform(0.2, 0.35)
        spread = rng.uniform(20, 40)
        wings = [tip + _rotate([d], spread)[0], tip + _rotate([d], -spread)[0]]
        if rng.random() < 0.3:
            ops.append(("fill", [wings[0], tip, wings[1]]))
        else:
            ops.append(("path", [wings[0], tip, wings[1]], width, False))
    return _rotate_ops(ops, angle)


# --- the crops ----------------------------------------------------------------------------------

GLYPH_KINDS = {
    "printed_digit_serif": printed_digit_serif, "printed_digit_sans": printed_digit_sans,
    "printed_letter": printed_letter, "printed_fragment": printed_fragment,
    "hand_letter": hand_letter, "hand_confusable": hand_confusable,
    "hand_operator": hand_operator, "hand_symbol": hand_symbol, "hand_word": hand_word,
}
DRAWN_KINDS = {
    "line": line, "wavy_line": wavy_line, "dotted_line": dotted_line,
    "grid_crossing": grid_crossing, "box": box, "crossed_box": crossed_box, "tick": tick,
    "dots": dots, "blob": blob, "scribble": scribble, "bracket": bracket, "arrow": arrow,
}


def mark(kind: str, rng) -> np.ndarray:
    """One mark of `kind` at page scale, float white on black (before the photo)."""
    if kind in GLYPH_KINDS:
        return GLYPH_KINDS[kind](rng)
    return draw(DRAWN_KINDS[kind](rng, rng.uniform(18, 60)))


def crop(kind: str, rng, tries: int = 10) -> np.ndarray:
    """One 28x28 float crop of `kind`, as the reader would feed it to the model."""
    for _ in range(tries):
        v = photograph(mark(kind, rng), rng)
        if v.max() > 0.5:
            return normalize_digit(v, ink="white")
    raise RuntimeError(f"could not draw a visible {kind} mark in {tries} tries")


def kind_counts(n: int) -> np.ndarray:
    """How many crops of each kind make up n (the weights' shares, largest remainders rounded up)."""
    w = np.array([KIND_WEIGHTS[k] for k in KINDS])
    exact = n * w / w.sum()
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[:n - counts.sum()]] += 1
    return counts


def make_negatives_with_kinds(n: int, seed: int = 0):
    """(uint8 [n,28,28] white-on-black non-digit crops, int64 [n] index into KINDS), shuffled."""
    rng = np.random.default_rng(seed)
    kinds = rng.permutation(np.repeat(np.arange(len(KINDS)), kind_counts(n)))
    out = np.empty((n, 28, 28), np.uint8)
    for i, k in enumerate(kinds):
        out[i] = np.round(crop(KINDS[k], rng) * 255)
    return out, kinds.astype(np.int64)


def make_negatives(n: int, seed: int = 0) -> np.ndarray:
    """uint8 [n,28,28] white-on-black crops of non-digit marks, a mix of `KINDS` (see the module
    doc), MNIST-style like the reader's crops. The same seed gives the same crops."""
    return make_negatives_with_kinds(n, seed)[0]


def photo_marks(path, classes: int = 11) -> tuple:
    """(crops uint8 [N,28,28], labels int64 [N]) of a file written by `edgedigits harvest`
    (`runtime.harvest`: crops of real photos, labels 0-9 and 10 = "none"), checked."""
    try:
        with np.load(path, allow_pickle=False) as f:
            crops, labels = f["crops"], f["labels"]
    except (OSError, ValueError, KeyError) as e:
        raise EdgeDigitsError(f"{path}: not a file of harvested marks ({e})") from None
    if crops.dtype != np.uint8 or crops.ndim != 3 or crops.shape[1:] != (28, 28) \
            or labels.shape != (len(crops),) or not np.isin(labels, np.arange(11)).all():
        raise EdgeDigitsError(f"{path}: expected uint8 crops [N,28,28] and labels 0-10")
    if classes < 11 and (labels == 10).any():
        raise EdgeDigitsError(f"{path}: holds 'none' marks; train an 11-class model (--negatives N)")
    return crops, labels.astype(np.int64)
