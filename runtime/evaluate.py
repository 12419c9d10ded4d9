"""Score page reading against a folder of labelled photos (`edgedigits eval-paper DIR`).

DIR/labels.csv has one row per image with at least `filename` and `lines` (the digits of each
line in reading order, lines separated by `|`), like ../shared/data/paper/labels.csv.

Per image, the digits read (all lines joined, in reading order) are aligned with the true ones by
edit distance (Levenshtein: a missed, an extra and a wrong digit each cost 1), and
    digit accuracy = 1 - edits / true digits        (can be negative for pure garbage; clipped at 0)
    missed / extra / wrong = the edits of one alignment: true digits not read, marks read as
                     digits that are none (a printed digit, a letter, a speck), digits misread;
                     they show which way a page fails
    exact lines    = the longest common subsequence of read and true lines (a line counts only if
                     every digit is right and it comes in the right order)
Overall figures sum edits and lines over all images (so big pages weigh more).
"""

import csv
import re
import time
from pathlib import Path

from edgedigits.common import atomic_write
from edgedigits.errors import EdgeDigitsError

DIGITS = re.compile("[0-9]+")       # ASCII digits only: str.isdigit() also takes '١٢٣' and '²'


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (insert, delete, substitute cost 1)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diag, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (x != y))
    return row[-1]


def edit_counts(read, truth) -> dict:
    """The edits of a cheapest alignment of `read` with `truth`: {"missed", "extra", "wrong"}."""
    n, m = len(read), len(truth)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 or j == 0:
                cost[i][j] = i + j
            else:
                cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1,
                                 cost[i - 1][j - 1] + (read[i - 1] != truth[j - 1]))
    counts = {"missed": 0, "extra": 0, "wrong": 0}
    i, j = n, m
    while i or j:                                   # walk one cheapest path back
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (read[i - 1] != truth[j - 1]):
            counts["wrong"] += read[i - 1] != truth[j - 1]
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            counts["extra"] += 1
            i -= 1
        else:
            counts["missed"] += 1
            j -= 1
    return counts


def common_lines(read: list, truth: list) -> int:
    """Length of the longest common subsequence of two lists of line strings."""
    row = [0] * (len(truth) + 1)
    for x in read:
        diag = 0
        for j, y in enumerate(truth, 1):
            diag, row[j] = row[j], diag + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def read_labels(folder: Path) -> list:
    """[(filename, [line, ...]), ...] from folder/labels.csv."""
    path = folder / "labels.csv"
    if not path.is_file():
        raise EdgeDigitsError(f"{path}: no such file (a labels.csv with columns filename,lines)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:     # a BOM (Excel) is not a column name
            reader = csv.DictReader(f)
            rows = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as e:
        raise EdgeDigitsError(f"{path}: not UTF-8 text (byte {e.start}); a labels.csv is a text file") from None
    except csv.Error as e:
        raise EdgeDigitsError(f"{path}: not a CSV file ({e})") from None
    if not rows or not {"filename", "lines"} <= set(reader.fieldnames or ()):
        raise EdgeDigitsError(f"{path}: needs the columns filename and lines (lines split by |)")
    out, seen = [], set()
    for n, row in rows:
        if row["filename"] is None or row["lines"] is None or None in row:
            raise EdgeDigitsError(f"{path}:{n}: has {len([v for v in row.values() if v is not None])} fields, "
                                  f"the header {len(reader.fieldnames)}")
        lines = [s.strip() for s in row["lines"].split("|") if s.strip()]
        if not row["filename"].strip() or not all(DIGITS.fullmatch(s) for s in lines):
            raise EdgeDigitsError(f"{path}:{n}: expected a filename and lines of the digits 0-9 split by |")
        if row["filename"] in seen:
            raise EdgeDigitsError(f"{path}:{n}: {row['filename']} is listed twice")
        seen.add(row["filename"])
        out.append((row["filename"], lines))
    return out


def score(read: list, truth: list) -> dict:
    """The figures of one image: digits found, edits, digit accuracy, exact lines."""
    true_digits = "".join(truth)
    edits = edit_distance("".join(read), true_digits)
    return {"digits_true": len(true_digits), "digits_found": len("".join(read)), "edits": edits,
            **edit_counts("".join(read), true_digits),
            "digit_accuracy": max(0.0, 1 - edits / max(1, len(true_digits))),
            "lines_true": len(truth), "lines_exact": common_lines(read, truth)}


def evaluate_folder(folder: Path, recognizer, annotate_dir: Path | None = None, **options) -> dict:
    """Read every labelled image of `folder`; per-image and overall figures (a JSON-able dict).

    An image that cannot be read scores as if nothing was found on it and carries an `error`.
    """
    from .page import annotate, load_image, read_page

    folder = Path(folder)
    images, used = [], set()
    for name, truth in read_labels(folder):
        entry = {"file": name, "truth": truth}
        t0 = time.perf_counter()
        try:
            image = load_image(folder / name)
            result = read_page(image, recognizer, **options)
            read = result.lines
            if annotate_dir is not None:
                write_image(annotation_path(Path(annotate_dir), name, used), annotate(image, result))
        except EdgeDigitsError as e:
            read, entry["error"] = [], str(e)
        except OSError as e:                    # e.g. the annotation folder is not writable
            read, entry["error"] = [], f"{e.filename or name}: {e.strerror or e}"
        entry["read"] = read
        entry["ms"] = round((time.perf_counter() - t0) * 1000, 1)
        entry.update(score(read, truth))
        images.append(entry)
    total = {k: sum(e[k] for e in images) for k in ("digits_true", "digits_found", "edits", "missed",
                                                     "extra", "wrong", "lines_true", "lines_exact")}
    return {"folder": str(folder), "model": recognizer.model_id,
            "digit_accuracy": max(0.0, 1 - total["edits"] / max(1, total["digits_true"])),
            "line_exact": total["lines_exact"] / max(1, total["lines_true"]),
            "images_read": sum(1 for e in images if e["digits_found"] > 0 and "error" not in e),
            **total, "images": images}


def write_image(path: Path, image) -> None:
    """Write an image through a temporary name, so a crash never leaves half a file."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise EdgeDigitsError(f"{path}: cannot encode the image")
    atomic_write(path, data.tobytes())


def annotation_path(folder: Path, name: str, used: set) -> Path:
    """DIR/<stem>.png, or DIR/<stem>-<suffix>.png when another image of the folder has that stem
    (x.jpg and x.png): one annotation never overwrites another."""
    stem, suffix = Path(name).stem, Path(name).suffix.lstrip(".")
    out = f"{stem}.png"
    if out in used:
        out = f"{stem}-{suffix or 'image'}.png"
    n = 2
    while out in used:
        out, n = f"{stem}-{suffix}-{n}.png", n + 1
    used.add(out)
    return folder / out
