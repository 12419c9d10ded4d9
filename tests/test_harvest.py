"""Harvesting the marks of labelled photos as training crops (`edgedigits harvest`), and the
trainer mixing them in (`--photo-marks`)."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from edgedigits.errors import EdgeDigitsError
from edgedigits.runtime import Recognizer, load_image, read_page
from edgedigits.runtime.harvest import NONE, align, harvest, label_marks, save

SUDOKU = "AlexKubiesa_sudoku_01_27.jpg"      # 15 pencil digits among printed givens


def test_align_marks_extras_and_substitutions():
    assert align("91234", "1234") == [-1, 0, 1, 2, 3]          # a leading extra mark
    assert align("1294", "1234") == [0, 1, None, 3]            # a misread digit
    assert align("12", "1234") == [0, 1]                       # missed digits give no mark


def test_lone_matches_are_left_out():
    marks = [SimpleNamespace(label=c) for c in "7123"]
    labelled = label_marks(marks, ["73"])            # 7 matches alone, 3 matches alone: chance
    assert [(m.label, label) for m, label in labelled] == [("1", NONE), ("2", NONE)]
    labelled = label_marks(marks, ["712"])
    assert [label for _, label in labelled] == [7, 1, 2, NONE]


def test_keep_all_reads_every_candidate(hard_dir):
    rec = Recognizer()
    image = load_image(hard_dir / SUDOKU)
    normal, everything = read_page(image, rec), read_page(image, rec, keep_all=True)
    assert everything.rejected == [] or all(m.kind not in ("none", "printed") for m in everything.rejected)
    assert len(everything.digits) > len(normal.digits) + 10      # the printed givens come back


def test_harvest_labels_pencil_digits_and_printed_givens(hard_dir):
    marks = harvest(hard_dir, Recognizer(), only={SUDOKU})
    labels = marks["labels"]
    assert marks["crops"].shape == (len(labels), 28, 28) and marks["crops"].dtype == np.uint8
    assert 5 <= (labels < 10).sum() <= 15                     # pencil digits, in runs of two
    assert (labels == NONE).sum() >= 15                       # the givens and the grid's scraps
    assert set(marks["files"]) == {SUDOKU}


def test_harvest_command_and_trainer_round_trip(hard_dir, tmp_path):
    from edgedigits.train.negatives import photo_marks

    out = tmp_path / "marks.npz"
    r = subprocess.run([sys.executable, "-m", "edgedigits.cli", "harvest", str(hard_dir), "--out", str(out),
                        "--only", SUDOKU], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    crops, labels = photo_marks(out)
    assert len(crops) == len(labels) > 20
    with pytest.raises(EdgeDigitsError, match="11-class"):
        photo_marks(out, classes=10)
    r = subprocess.run([sys.executable, "-m", "edgedigits.cli", "harvest", str(hard_dir), "--out", str(out),
                        "--only", "nope.jpg"], capture_output=True, text=True)
    assert r.returncode != 0 and "nope.jpg" in r.stderr and "Traceback" not in r.stderr


def test_harvest_several_folders_none_only(hard_dir, paper_dir, tmp_path):
    """Several labelled folders make one file; `--none-only` keeps the marks that are not digits
    (of synthetic pages of MNIST digits, the letters, words, signs and print), each of them."""
    both, nones = tmp_path / "both.npz", tmp_path / "none.npz"
    for out, extra in ((both, []), (nones, ["--none-only"])):
        r = subprocess.run([sys.executable, "-m", "edgedigits.cli", "harvest", str(hard_dir), str(paper_dir),
                            "--out", str(out), "--only", SUDOKU, "hypjudy_A4_0.png", *extra],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    with np.load(both) as f:
        labels, files = f["labels"], f["files"]
    assert set(files) == {SUDOKU, "hypjudy_A4_0.png"} and (labels < NONE).any() and (labels == NONE).any()
    with np.load(nones) as f:
        assert (f["labels"] == NONE).all() and len(f["labels"]) == int((labels == NONE).sum())
        assert np.array_equal(f["crops"], np.load(both)["crops"][labels == NONE])


@pytest.mark.slow
def test_photo_marks_are_mixed_into_training(mnist, mnist_dir, tmp_path):
    pytest.importorskip("edgedigits.train.negatives")
    from edgedigits.train.augment import AugmentConfig
    from edgedigits.train.train import Recipe, fit

    crops = np.concatenate([mnist[2][:20], np.zeros((10, 28, 28), np.uint8)])
    labels = np.concatenate([mnist[3][:20], np.full(10, NONE)])
    save(tmp_path / "marks.npz", {"crops": crops, "labels": labels, "files": np.array(["x"] * 30)})
    recipe = Recipe(model="cnn-tiny", epochs=1, min_epochs=1, limit=1000, val_size=500, batch_size=64,
                    negatives=200, photo_marks=str(tmp_path / "marks.npz"), photo_repeat=3,
                    augment=AugmentConfig.off().to_dict())
    config = fit(recipe, mnist_dir, tmp_path / "run", log=lambda *_: None)
    assert config["data"]["split"]["photo_marks"] == 30
    assert config["recipe"]["photo_marks"].endswith("marks.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(EdgeDigitsError, match="harvested"):
        fit(Recipe(model="cnn-tiny", epochs=1, limit=500, val_size=500, negatives=100, photo_marks=str(bad)),
            mnist_dir, tmp_path / "run2", log=lambda *_: None)
