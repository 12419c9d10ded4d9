"""Trainer: a short real run beats chance, checkpoints load safely, resume continues,
augmentation behaves, and the shipped model meets its accuracy target."""

import json

import numpy as np
import pytest
import torch

from edgedigits.errors import EdgeDigitsError
from edgedigits.train.augment import AugmentConfig, augment, preview_grid
from edgedigits.train.checkpoint import CheckpointError, load_checkpoint
from edgedigits.train.evaluate import evaluate
from edgedigits.train.train import Recipe, fit, predict_logits, to_tensor


def tiny_recipe(**kw):
    return Recipe(**{"model": "cnn-tiny", "epochs": 3, "limit": 3000, "val_size": 1000, "batch_size": 64,
                     "lr": 5e-3, "seed": 1, "augment": AugmentConfig.off().to_dict(), **kw})


@pytest.fixture(scope="module")
def short_run(mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = fit(tiny_recipe(), mnist_dir, out, log=lambda *_: None)
    return out, config


@pytest.mark.slow
def test_short_training_beats_chance(short_run):
    out, config = short_run
    assert config["test_accuracy"] > 0.90          # chance is 0.10
    assert config["data"]["split"] == {"train": 3000, "val": 1000, "test": 10000, "seed": 1}
    for name in ("model.safetensors", "model.json", "MODEL_CARD.md", "history.json", "curves.png", "last.pt"):
        assert (out / name).exists(), name
    assert "MNIST test accuracy" in (out / "MODEL_CARD.md").read_text()


@pytest.mark.slow
def test_checkpoint_round_trip(short_run, mnist):
    out, config = short_run
    model, loaded = load_checkpoint(out)
    acc = (predict_logits(model, to_tensor(mnist[2]), "cpu").argmax(1).numpy() == mnist[3]).mean()
    assert acc == pytest.approx(loaded["test_accuracy"], abs=1e-6)


@pytest.mark.slow
def test_resume_continues_an_interrupted_run(mnist_dir, tmp_path):
    def kill_after_epoch_2(message):
        if message.startswith("epoch   2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_recipe(), mnist_dir, tmp_path, log=kill_after_epoch_2)
    assert len(json.loads((tmp_path / "history.json").read_text())) == 2
    with pytest.raises(EdgeDigitsError, match="--epochs 3"):
        fit(tiny_recipe(epochs=5), mnist_dir, tmp_path, resume=True, log=lambda *_: None)
    config = fit(tiny_recipe(), mnist_dir, tmp_path, resume=True, log=lambda *_: None)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert config["epochs_run"] == 3 and config["test_accuracy"] > 0.90


@pytest.mark.slow
def test_same_seed_same_weights(mnist_dir, tmp_path):
    """--seed with --deterministic and a fixed thread count reproduces a run bit for bit."""
    from safetensors.torch import load_file

    threads = torch.get_num_threads()
    try:
        recipe = tiny_recipe(epochs=1, min_epochs=1, limit=1000, deterministic=True, threads=1,
                             augment=AugmentConfig().to_dict())
        runs = [fit(recipe, mnist_dir, tmp_path / name, log=lambda *_: None) for name in ("a", "b")]
        other = fit(tiny_recipe(epochs=1, min_epochs=1, limit=1000, deterministic=True, threads=1,
                                augment=AugmentConfig().to_dict(), seed=2), mnist_dir, tmp_path / "c",
                    log=lambda *_: None)
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)
    a, b, c = (load_file(tmp_path / name / "model.safetensors") for name in ("a", "b", "c"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0]["test_accuracy"] == runs[1]["test_accuracy"]
    assert not all(torch.equal(a[k], c[k]) for k in a)        # the seed matters


@pytest.mark.slow
def test_corrupt_checkpoint_is_refused(short_run, tmp_path):
    out, _ = short_run
    (tmp_path / "model.json").write_text((out / "model.json").read_text())
    (tmp_path / "model.safetensors").write_bytes(b"\x80\x04 not a safetensors file")
    with pytest.raises(CheckpointError, match="not a valid checkpoint"):
        load_checkpoint(tmp_path)


def test_augmentation_keeps_range_and_changes_pixels(mnist):
    x = to_tensor(mnist[0][:64])
    y = augment(x, AugmentConfig(), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert (y - x).abs().mean() > 0.01
    same = augment(x, AugmentConfig.off(), torch.Generator().manual_seed(0))
    assert torch.allclose(same, x, atol=1e-6)


def test_augment_preview_rows(mnist):
    grid, names = preview_grid(mnist[0], AugmentConfig(), per_row=6)
    assert names[0] == "original" and names[-1] == "all" and len(names) == 8
    assert grid.shape == (28 * len(names), 28 * 6)


def test_shipped_cnn_meets_its_target(shipped_dir, mnist_dir, tmp_path):
    result = evaluate(shipped_dir / "model.safetensors", mnist_dir, tmp_path)
    assert result["n"] == 10000
    # the reader's cnn has an 11th class, "none": its ten digit outputs keep the MNIST target, and
    # it calls under 1% of the test digits "none"
    assert result["digit_outputs_accuracy"] >= 0.9960
    assert result["accuracy"] >= 0.985 and result["called_none"] <= 100
    assert (tmp_path / "confusion.png").exists() and (tmp_path / "misclassified.png").exists()
    cm = np.array(result["confusion_matrix"])
    assert cm.sum() == 10000 and np.trace(cm) == round(result["accuracy"] * 10000)
    assert cm[:, 10].sum() == result["called_none"]


@pytest.mark.slow
def test_negatives_add_a_none_class_and_init_keeps_the_digits(mnist_dir, shipped_dir, tmp_path):
    """--negatives N --init DIR --distill W: an 11-class model grown from a trained 10-class one,
    whose ten digit outputs start where the init model's were; its card and config say so."""
    pytest.importorskip("edgedigits.train.negatives")
    teacher = shipped_dir.parent / "cnn-mnist"
    recipe = tiny_recipe(model="cnn", epochs=1, min_epochs=1, lr=3e-4, negatives=300,
                         init=str(teacher), distill=3.0)
    config = fit(recipe, mnist_dir, tmp_path, log=lambda *_: None)
    assert config["labels"] == [str(d) for d in range(10)] + ["none"]
    assert config["model_kwargs"] == {"classes": 11}
    assert config["data"]["split"]["negatives_train"] == 300
    r = config["rejection"]
    assert 0 <= r["mnist_test_called_none"] <= 0.2 and r["negatives_test_n"] == 1000
    assert config["digit_outputs_accuracy"] >= 0.98          # held near the init model's 99.66%
    model, _ = load_checkpoint(tmp_path)
    assert predict_logits(model, torch.zeros(2, 1, 28, 28), "cpu").shape == (2, 11)
    assert "none" in (tmp_path / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("limit", [100, 600])
def test_a_run_of_a_few_steps_trains(mnist_dir, tmp_path, limit):
    """1 and 5 optimizer steps: the one-cycle schedule needs a warm-up of two steps (it divided by
    zero on 5), and a run of 1-3 steps keeps its learning rate."""
    config = fit(tiny_recipe(epochs=1, min_epochs=1, limit=limit, val_size=500), mnist_dir, tmp_path,
                 log=lambda *_: None)
    assert 0.0 <= config["test_accuracy"] <= 1.0
