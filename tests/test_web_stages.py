"""The JS port of runtime/rules.py and runtime/digits.py (web/src/runtime/rules.js, digits.js) run
in node on the inputs the Python stages were given on real photos, and must give what Python
gave: the same rules and masks, writing angle, grid, sheet corners and rotation, lines, cuts,
crops (within 2/255) and rejections. web/tools/dump_stage.py dumps the Python side, web/tools/stage.mjs replays it.
(The whole page in real Chromium is tests/test_web_parity.py.)"""

import shutil
import subprocess
import sys

import pytest

from web_fixtures import ROOT, WEB, missing

# a sudoku (rules, grid, cells, printed givens), a digit on squared paper, a formula, a line of
# digits, a sheet on a desk (its corners), a skewed page (turned upright)
PHOTOS = ["paper-hard/AlexKubiesa_sudoku_01_03.jpg", "paper-hard/kawalc1_IMG_4218.jpg",
          "paper-hard/FelSiq_integral_sample1.jpg", "paper/lucksoft_123.jpg", "paper/hypjudy_photo_0.png",
          "paper/hypjudy_A4_4.png"]


@pytest.fixture(scope="module")
def rec():
    from edgedigits.runtime.recognizer import Recognizer

    return Recognizer()


@pytest.fixture(scope="module")
def node_modules():
    if shutil.which("node") is None or shutil.which("npm") is None:
        missing("node/npm not installed (apt-get install nodejs npm)")
    if not (WEB / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=WEB, check=True,
                       capture_output=True)
    return WEB / "node_modules"


def test_rules_and_digits_stages_match_python(node_modules, paper_dir, hard_dir, tmp_path):
    photos = [str((hard_dir if p.startswith("paper-hard/") else paper_dir) / p.split("/", 1)[1]) for p in PHOTOS]
    subprocess.run([sys.executable, str(WEB / "tools" / "dump_stage.py"), str(tmp_path), *photos],
                   check=True, capture_output=True, cwd=ROOT)
    done = subprocess.run(["node", str(WEB / "tools" / "stage.mjs"), str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)
    lines = done.stdout.splitlines()
    stages = {line.split()[2].rsplit("_", 1)[0] for line in lines if line.startswith(("ok", "DIFF"))}
    assert stages == {"find_rules", "find_boxes", "writing_angle", "find_grid", "quadrilateral", "rotation",
                      "group_lines", "classify_blobs", "finish_lines"}, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.returncode == 0 and not [line for line in lines if line.startswith("DIFF")], \
        done.stdout[-3000:] + done.stderr[-2000:]


def test_grid_cells_are_numbered_left_to_right(hard_dir, rec):
    """A sudoku's digits say their row and their column: within a row, each digit's column is
    its rank among the row's filled cells, left to right (not 0 for all of them)."""
    from edgedigits.runtime.page import read_page
    from edgedigits.runtime.images import load_image

    result = read_page(load_image(hard_dir / "AlexKubiesa_sudoku_01_03.jpg"), rec)
    rows = {}
    for d in result.digits:
        if d.cell is not None:
            rows.setdefault(d.cell[0], []).append(d)
    assert len(rows) >= 6
    for row in rows.values():
        row.sort(key=lambda d: d.box[0])
        assert [d.cell[1] for d in row] == list(range(len(row))), [(d.label, d.cell) for d in row]


def test_rule_runs_equal_opencvs_opening(node_modules):
    """rules.js finds rule pixels by run lengths (OpenCV.js's long openings cost O(length) a pixel
    in wasm): on random masks, with odd and even lengths and runs cut by the border, it must give
    OpenCV's own dilate + MORPH_OPEN + and, pixel for pixel."""
    done = subprocess.run(["node", str(WEB / "tools" / "check_runs.mjs")], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0 and " equals OpenCV's opening on " in done.stdout, done.stdout + done.stderr


def test_cut_candidates_iterate_as_a_python_set(node_modules, tmp_path):
    """cut_columns keeps the thinnest candidates, ties in the order of a Python set: digits.js's
    IntSet must iterate as CPython's set of ints does, whatever was added and in what order."""
    import json
    import random

    rng = random.Random(7)
    cases = []
    for _ in range(2000):
        seq = [rng.randrange(0, rng.choice([16, 64, 300, 2000])) for _ in range(rng.randrange(0, 200))]
        cases.append([seq, list(set(seq))])
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    script = (f"import {{ IntSet }} from {json.dumps((WEB / 'src' / 'runtime' / 'digits.js').as_uri())};\n"
              "import fs from 'node:fs';\n"
              f"const cases = JSON.parse(fs.readFileSync({json.dumps(str(tmp_path / 'cases.json'))}, 'utf8'));\n"
              "let bad = 0;\n"
              "for (const [seq, want] of cases) {\n"
              "  const s = new IntSet(); for (const c of seq) s.add(c);\n"
              "  if (JSON.stringify(s.values()) !== JSON.stringify(want)) bad++;\n"
              "}\n"
              "console.log(`${cases.length - bad}/${cases.length}`);\n")
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True,
                          cwd=WEB, timeout=120)
    assert done.stdout.strip() == f"{len(cases)}/{len(cases)}", done.stdout + done.stderr
