"""`edgedigits finetune` on samples saved by the camera demo's SampleStore: a user with an unusual
style is read better afterwards, MNIST is not forgotten, a bad model is refused, nothing is
overwritten. Budget: about 30 s on a quiet 2-core machine (two short fine-tunes, each evaluating
MNIST test twice, one export to ONNX)."""

import json
import re

import cv2
import numpy as np
import pytest

from edgedigits.runtime.samples import INDEX, SampleStore
from edgedigits.cli import main
from edgedigits.export.finetune import read_samples, split_holdout

N_SAMPLES = 300
QUICK = ["--epochs", "1", "--mnist", "2000", "--batch-size", "64", "--formats", "onnx", "--threads", "2"]


def boxed(images: np.ndarray) -> np.ndarray:
    """A distinctive style: every digit written inside a printed box (as on a form)."""
    out = images.copy()
    for x in out:
        cv2.rectangle(x, (1, 1), (26, 26), 255, 1)
    return out


def save_samples(root, images, labels, crops=None):
    store = SampleStore(root)
    for i, (image, label) in enumerate(zip(images, labels)):
        crop = 255 - image if crops is None else crops[i]       # dark ink on paper, as cut from a frame
        store.save(image.astype(np.float32) / 255.0, crop, str(int(label)), "edgedigits-cnn/test@0",
                   source="corrected", frame=i)
    return store


@pytest.fixture(scope="module")
def user_samples(mnist, tmp_path_factory):
    """300 MNIST training digits in the boxed style, saved through the camera demo's store."""
    train_x, train_y = mnist[0], mnist[1]
    pick = np.random.default_rng(1).choice(len(train_x), N_SAMPLES, replace=False)
    root = tmp_path_factory.mktemp("samples")
    save_samples(root, boxed(train_x[pick]), train_y[pick])
    return root


def test_read_samples_follows_the_documented_format(tmp_path, mnist):
    x, y = mnist[2][:12], mnist[3][:12]
    store = save_samples(tmp_path, x, y)
    images, labels, records = read_samples(tmp_path)
    assert np.array_equal(images, x) and np.array_equal(labels, y)
    assert all(r["model_id"] == "edgedigits-cnn/test@0" for r in records)
    # a correction of an image already saved wins; a torn last line and a missing PNG are skipped
    store.save(x[0].astype(np.float32) / 255, 255 - x[0], str((int(y[0]) + 1) % 10), "m@1", source="corrected")
    (tmp_path / records[1]["input"]).unlink()
    with open(tmp_path / INDEX, "a") as f:
        f.write('{"id": "torn", "label": "3", "inp')
    images, labels, _ = read_samples(tmp_path)
    assert len(images) == 11 and labels[-1] == (int(y[0]) + 1) % 10
    assert not any(np.array_equal(im, x[1]) for im in images)
    # held-back samples are chosen by their pixels: saving more never moves one into training
    some, more = mnist[2][:200], mnist[2][200:300]
    train, held = split_holdout(some, 0.2, seed=0)
    assert 20 <= len(held) <= 60 and sorted([*train, *held]) == list(range(200))
    _, held_more = split_holdout(np.concatenate([more, some]), 0.2, seed=0)
    assert {i + 100 for i in held} <= set(held_more)
    assert set(held) != set(split_holdout(some, 0.2, seed=1)[1])
    assert [len(part) for part in split_holdout(some[:2], 0.2, seed=0)] == [1, 1]


def test_too_few_samples_and_existing_output_are_refused(tmp_path, mnist, capsys):
    save_samples(tmp_path / "few", mnist[2][:5], mnist[3][:5])
    assert main(["finetune", "--samples", str(tmp_path / "few"), "--out", str(tmp_path / "o")]) == 2
    assert "fine-tuning needs at least" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    assert main(["finetune", "--samples", str(tmp_path / "few"), "--out", str(tmp_path / "taken")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["finetune", "--samples", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "no index.jsonl" in capsys.readouterr().err


@pytest.mark.slow
def test_finetune_learns_a_users_style_without_forgetting_mnist(user_samples, mnist_dir, mnist, tmp_path,
                                                                shipped_dir):
    from edgedigits.runtime import Recognizer

    out = tmp_path / "tuned"
    rc = main(["finetune", "--samples", str(user_samples), "--out", str(out), "--data-dir", str(mnist_dir),
               *QUICK])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["finetune.json", "labels.txt", "model.json",
                                                     "model.onnx", "model.onnx.sha256", "model.safetensors"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]     # no temporary folder left
    report = json.loads((out / "finetune.json").read_text())
    assert report["n_samples"] == N_SAMPLES and 0.1 * N_SAMPLES <= report["n_holdout"] <= 0.3 * N_SAMPLES
    held, test = report["holdout"], report["mnist_test"]
    assert held["after"] >= held["before"] + 0.10, held      # the user's style is read better ...
    assert test["after"] >= test["before"] - 0.001, test      # ... at most 0.1 points lost on MNIST

    # the exported file, in the device runtime, on the held-back samples and on MNIST test
    rec = Recognizer(out / "model.onnx")
    images, labels, records = read_samples(user_samples)
    ids = set(report["holdout_ids"])
    mask = np.array([r["id"] in ids for r in records])
    pred = rec.predict(images[mask].astype(np.float32) / 255).argmax(1)
    assert abs((pred == labels[mask]).mean() - held["after"]) < 0.02
    test_x, test_y = mnist[2], mnist[3]
    acc = (rec.predict(test_x.astype(np.float32) / 255).argmax(1) == test_y).mean()
    assert acc >= test["before"] - 0.0015 and abs(acc - test["after"]) < 0.001
    assert json.loads((out / "model.json").read_text())["finetune"]["weights_sha256"] == report["weights_sha256"]
    assert (shipped_dir / "model.safetensors").exists()       # the starting model is untouched


@pytest.mark.slow
def test_finetune_refuses_to_ship_a_model_that_forgot_mnist(user_samples, mnist_dir, tmp_path, capsys):
    out = tmp_path / "broken"
    # an absurd learning rate wrecks the model in a few steps: it must not be written
    rc = main(["finetune", "--samples", str(user_samples), "--out", str(out), "--data-dir", str(mnist_dir),
               "--lr", "0.5", "--epochs", "1", "--mnist", "300", "--batch-size", "64", "--formats", "onnx"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "refusing to ship" in err and "nothing was written" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_finetune_and_training_run_the_same_step(mnist, shipped_dir, monkeypatch):
    """One train_step for both loops: export/finetune.py has no optimisation loop of its own, and
    train_one_epoch and the fine-tuning loop each run train.train_step once per batch."""
    import inspect

    import torch

    from edgedigits.export import finetune as command
    from edgedigits.train import finetune as loop
    from edgedigits.train import train
    from edgedigits.train.augment import AugmentConfig
    from edgedigits.train.checkpoint import load_checkpoint

    source = inspect.getsource(command)
    assert not any(s in source for s in (".backward(", "optimizer", "zero_grad", "scheduler"))
    assert loop.train_step is train.train_step

    calls, step = [], train.train_step

    def counting(*a, **kw):
        calls.append(kw.get("distill_rows") is not None)
        return step(*a, **kw)

    monkeypatch.setattr(train, "train_step", counting)
    monkeypatch.setattr(loop, "train_step", counting)
    model, config = load_checkpoint(shipped_dir / "model.safetensors")
    settings = loop.FinetuneSettings(epochs=1, mnist=100, batch_size=50, distill=0.0)
    steps = loop.finetune(model, config, mnist[0][:500], mnist[1][:500], mnist[2][:20], mnist[3][:20],
                          settings, log=lambda *_: None)
    assert steps == len(calls) == 3 and all(calls)         # 100 MNIST + 20 samples x2 in batches of 50
    recipe = train.Recipe(batch_size=50, epochs=1)
    optimizer = train.make_optimizer(model, recipe)
    x, y = train.to_tensor(mnist[0][:120]), torch.tensor(mnist[1][:120], dtype=torch.long)
    loss, acc = train.train_one_epoch(model, x, y, optimizer, train.make_scheduler(optimizer, recipe, 3),
                                      recipe, AugmentConfig(), torch.Generator().manual_seed(0), "cpu", "")
    assert len(calls) == 6 and calls[3:] == [False] * 3 and loss > 0 and 0.5 < acc <= 1


def test_samples_saved_by_the_camera_demo_are_read_by_finetune_through_one_owner(paper_dir, tmp_path):
    """The samples format has one owner, runtime/samples.py: the demo's `s` / `c` keys write with
    it and finetune reads with it (and no other module parses index.jsonl)."""
    from pathlib import Path

    from edgedigits import camera_demo, export, runtime, train
    from edgedigits.camera_demo.demo import Session
    from edgedigits.camera_demo.sources import Frame
    from edgedigits.runtime import Recognizer, load_image
    from edgedigits.runtime.samples import to_uint8

    session = Session(Recognizer(), SampleStore(tmp_path / "s"))
    photo = (paper_dir / "labels.csv").read_text().splitlines()[1].split(",")[0]
    session.process(Frame(load_image(paper_dir / photo), 0, 0.0))
    assert len(session.shown) >= 10
    assert session.save().startswith(f"saved {len(session.shown)} samples")
    wrong = "1" if session.shown[0].label != "1" else "7"
    session.correct(0, wrong)
    images, labels, records = read_samples(tmp_path / "s")
    assert len(images) == len(session.shown)          # the correction replaced the acceptance ...
    assert labels[-1] == int(wrong) and records[-1]["source"] == "corrected"      # ... and wins
    assert np.array_equal(images[-1], to_uint8(session.shown[0].crop28))
    assert [int(d.label) for d in session.shown[1:]] == list(labels[:-1])

    owners = [f"{Path(package.__file__).parent.name}/{p.name}"
              for package in (camera_demo, export, runtime, train) for p in Path(package.__file__).parent.glob("*.py")
              if re.search(r'[=/]\s*"index\.jsonl"', p.read_text())]
    assert owners == ["runtime/samples.py"]
