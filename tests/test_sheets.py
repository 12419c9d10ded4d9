"""Real sheets: rules and grids taken out of the ink, tables read one line per row, tilted pages
turned upright, every mark that is not a digit set aside with a reason, and eval-paper's
missed / extra / wrong counts. Real photos from ../shared/data/paper-hard, synthetic pages and
synthetic rules."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgedigits.runtime import Recognizer, load_image, read_page
from edgedigits.runtime.evaluate import edit_counts, score
from edgedigits.runtime.rules import find_rules, rotation, writing_angle
from edgedigits.runtime.ink import find_blobs


@pytest.fixture(scope="module")
def hard_dir(paper_dir):
    path = paper_dir.parent / "paper-hard"
    if not path.is_dir():
        pytest.skip(f"paper-hard photos not found at {path}")
    return path


@pytest.fixture(scope="module")
def rec():
    return Recognizer()


def grid_page(cell=60, n=5, digit=None):
    """A white page with an n x n grid of 2 px rules; `digit` (a 28x28 MNIST-style crop) is drawn
    dark across the rule between the first two rows of the middle column."""
    size = cell * n + 40
    page = np.full((size, size), 235, np.uint8)
    for k in range(n + 1):
        cv2.line(page, (20, 20 + k * cell), (20 + n * cell, 20 + k * cell), 60, 2)
        cv2.line(page, (20 + k * cell, 20), (20 + k * cell, 20 + n * cell), 60, 2)
    return page


def test_edit_counts_say_which_way_a_page_fails():
    assert edit_counts("123", "123") == {"missed": 0, "extra": 0, "wrong": 0}
    assert edit_counts("12", "123") == {"missed": 1, "extra": 0, "wrong": 0}
    assert edit_counts("1293", "123") == {"missed": 0, "extra": 1, "wrong": 0}
    assert edit_counts("173", "123") == {"missed": 0, "extra": 0, "wrong": 1}
    s = score(["7145"], ["714", "5"])
    assert (s["missed"], s["extra"], s["wrong"], s["edits"]) == (0, 0, 0, 0)


def test_rules_are_taken_out_and_crossing_strokes_kept():
    page = grid_page()
    stroke = page.copy()
    cv2.line(stroke, (110, 60), (110, 110), 40, 3)            # a stroke crossing the rule at y=80
    mask = (stroke < 150).astype(np.uint8)
    clean, rules = find_rules(mask, 24)
    assert len(rules.horizontal) == 6 and len(rules.vertical) == 6
    # the grid is gone: away from the stroke no rule pixel is left
    assert clean[20:22, 200:300].sum() == 0 and clean[200:300, 20:22].sum() == 0
    # the stroke survives whole, where it crosses the rule too
    n, _ = cv2.connectedComponents(clean[55:115, 100:120])
    assert n == 2 and clean[80, 110] == 1
    # a page with no ruling (a long stroke, a sheet edge) keeps its ink
    lone = np.zeros((300, 300), np.uint8)
    cv2.line(lone, (10, 150), (290, 150), 1, 2)
    assert find_rules(lone, 24)[0].sum() == lone.sum()


def test_writing_angle_of_a_tilted_grid():
    page = grid_page(cell=40, n=8)
    for digit_y in range(8):                                  # marks in each cell
        for digit_x in range(8):
            cv2.circle(page, (40 + digit_x * 40, 40 + digit_y * 40), 7, 40, 2)
    for angle in (0.0, 12.0, -25.0):
        m, size = rotation(page.shape, angle)
        turned = cv2.warpAffine(page, m, size, borderValue=235)
        blobs, ink, geom, _, _ = find_blobs(turned)
        skew, doubtful = writing_angle(blobs, (ink.labels > 0).astype(np.uint8), geom.height)
        assert abs(skew - (-angle)) < 2.0, (angle, skew)      # turning by -skew levels the page


def test_sudoku_reads_one_line_per_grid_row(hard_dir, rec):
    """The printed grid is taken out of the ink; each row of the grid is one line (however wide
    its gaps), and every digit in it says its row and column."""
    image = load_image(hard_dir / "AlexKubiesa_sudoku_01_03.jpg")
    result = read_page(image, rec)
    in_grid = [d for d in result.digits if d.cell is not None]
    assert len(in_grid) >= 60                                # 81 cells, digits found in most
    line_of_row = {}
    for d in in_grid:
        line_of_row.setdefault(d.cell[0], set()).add(d.line)
    assert all(len(lines) == 1 for lines in line_of_row.values()), line_of_row   # a row is one line
    full = [row for row, lines in line_of_row.items() if sum(d.cell[0] == row for d in in_grid) == 9]
    assert len(full) >= 5                                    # whole rows of 9, however wide the gaps
    as_json = result.as_dict()
    assert all("row" in d and "column" in d for d in as_json["digits"] if d["line"] in
               {d.line for d in in_grid})
    assert as_json["rejected"] and {"box", "kind"} <= set(as_json["rejected"][0])


def test_tilted_ruled_page_is_turned_upright(mnist, rec):
    synthpages = pytest.importorskip("edgedigits.train.synthpages")
    _, _, images, labels = mnist
    for tilt in (10.0, 25.0):
        image, truth, info = synthpages.make_page(7, images, labels, "ruled", tilt=tilt)
        assert abs(read_page(image, rec).turn - tilt) < 3, tilt


def test_recognize_json_lists_rejected_marks(hard_dir, tmp_path):
    out = subprocess.run([sys.executable, "-m", "edgedigits.cli", "recognize", "--json",
                          str(hard_dir / "AlexKubiesa_sudoku_01_27.jpg"), "--annotate", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["rejected"] and all(m["kind"] and len(m["box"]) == 4 for m in record["rejected"])
    assert (tmp_path / "AlexKubiesa_sudoku_01_27.png").exists()
