"""`edgedigits harvest DIR --out marks.npz`: the marks of labelled photos as training crops.

Synthetic marks teach the classifier what is not a digit, but real sheets hold things no
generator draws: a sudoku's blurred serif givens, wood grain, cursive words, pencil digits under
a hand's shadow. This turns a folder of labelled photos (DIR/labels.csv, as `eval-paper` reads
it) into crops the trainer mixes in (`edgedigits train --photo-marks marks.npz`):

1. every candidate mark of each photo is read as a digit, nothing set aside
   (`read_page(..., keep_all=True)`), in reading order;
2. that reading is aligned with the true digits by edit distance, as `eval-paper` scores;
3. a mark aligned with an equal true digit, next to another such match, is that digit (a
   handwritten digit as the camera saw it); a mark the alignment leaves over is "none" (print,
   letters, signs, rules, texture); a lone match or a mark aligned with a different digit is
   left out (chance, a misread digit or a misplaced mark: no safe label). Digits the reader
   never found give no crop.

The file holds what the model saw: `crops` (uint8 [N,28,28], white on black like MNIST),
`labels` (0-9, 10 = none) and `files` (the photo each came from); the trainer reads it with
`edgedigits.train.negatives.photo_marks`. Photos that are trained on
are no longer a fair test: hold some out (`--only`, `--skip`) to measure on them.
"""

import io
from pathlib import Path

import numpy as np

from edgedigits.common import atomic_write
from edgedigits.errors import EdgeDigitsError

NONE = 10


def align(read: str, truth: str) -> list:
    """For each character of `read`: the index of the equal true character it is aligned with,
    -1 where the alignment leaves it over (an extra mark), None where it stands for a different
    true character (a substitution). One cheapest Levenshtein alignment."""
    n, m = len(read), len(truth)
    cost = np.zeros((n + 1, m + 1), np.int32)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1,
                             cost[i - 1, j - 1] + (read[i - 1] != truth[j - 1]))
    out = [None] * n
    i, j = n, m
    while i or j:                                   # walk one cheapest path back
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (read[i - 1] != truth[j - 1]):
            out[i - 1] = j - 1 if read[i - 1] == truth[j - 1] else None
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            out[i - 1] = -1
            i -= 1
        else:
            j -= 1
    return out


def label_marks(digits: list, truth: list) -> list:
    """[(digit, label)] for the marks of one photo read with keep_all (see the module doc). A
    match counts only inside a run of two (the mark before or after it matches the true digit
    before or after): among hundreds of printed marks a lone match is often chance."""
    read = "".join(d.label for d in digits)
    k = align(read, "".join(truth))
    n = len(k)

    def run(i):
        return (i > 0 and k[i - 1] is not None and k[i - 1] == k[i] - 1) or \
               (i + 1 < n and k[i + 1] is not None and k[i + 1] == k[i] + 1)

    out = []
    for i, d in enumerate(digits):
        if k[i] is not None and k[i] < 0:
            out.append((d, NONE))
        elif k[i] is not None and run(i):
            out.append((d, int(d.label)))
    return out


def to_uint8(crop28: np.ndarray) -> np.ndarray:
    return np.clip(np.round(crop28 * 255), 0, 255).astype(np.uint8)


def harvest(folder: Path, recognizer, only=(), skip=()) -> dict:
    """{"crops", "labels", "files"} for the labelled photos of `folder` (see the module doc);
    `only` / `skip`: file names to take or leave out."""
    from .evaluate import read_labels
    from .page import load_image, read_page

    crops, labels, files = [], [], []
    for name, truth in read_labels(Path(folder)):
        if (only and name not in only) or name in skip:
            continue
        result = read_page(load_image(Path(folder) / name), recognizer, keep_all=True)
        for d, label in label_marks(result.digits, truth):
            crops.append(to_uint8(d.crop28))
            labels.append(label)
            files.append(name)
    if not crops:
        raise EdgeDigitsError(f"{folder}: no marks found on the labelled photos")
    return {"crops": np.stack(crops), "labels": np.array(labels, np.int64), "files": np.array(files)}


def save(path: Path, marks: dict) -> None:
    """Write the .npz atomically (`common.atomic_write`: a crash never leaves half a file)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **marks)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(Path(path), buf.getvalue())
