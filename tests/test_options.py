"""Trainer options from the design notes (loss, dropout, L1, BatchNorm, GAP, MLP widths): each
trains a tiny real run, is recorded in model.json and the model card, and changes what it claims to."""

import json

import pytest
import torch
from torch import nn

from edgedigits.cli import main
from edgedigits.errors import EdgeDigitsError
from edgedigits.train.augment import AugmentConfig
from edgedigits.train.checkpoint import load_checkpoint
from edgedigits.train.train import Recipe, fit, loss_fn, to_tensor


def tiny(**kw):
    return Recipe(**{"model": "mlp", "epochs": 1, "min_epochs": 1, "limit": 2000, "val_size": 500,
                     "batch_size": 64, "lr": 3e-3, "seed": 1, "threads": 1,
                     "augment": AugmentConfig.off().to_dict(), **kw})


def train(recipe, mnist_dir, out):
    config = fit(recipe, mnist_dir, out, log=lambda *_: None)
    model, saved = load_checkpoint(out)
    return config, model, (out / "MODEL_CARD.md").read_text()


@pytest.fixture(scope="module")
def digits(mnist):
    return to_tensor(mnist[2][:256])


def test_dropout_zero_gives_identical_train_and_eval_outputs(mnist_dir, digits, tmp_path):
    config, model, card = train(tiny(dropout=0.0), mnist_dir, tmp_path / "off")
    assert config["model_kwargs"] == {"dropout": 0.0} and "dropout 0.0" in card
    with torch.no_grad():
        assert torch.equal(model.train()(digits), model.eval()(digits))
    config, model, card = train(tiny(dropout=0.5), mnist_dir, tmp_path / "half")
    assert config["model_kwargs"] == {"dropout": 0.5} and "dropout 0.5" in card
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.5]
    with torch.no_grad():
        train_out, eval_out = model.train()(digits), model.eval()(digits)
    assert not torch.allclose(train_out, eval_out)
    assert config["test_accuracy"] > 0.8


def test_no_batchnorm_leaves_no_batchnorm_layer(mnist_dir, tmp_path):
    # without BatchNorm a deep net learns slowly: a flat learning rate and small batches for a tiny run
    recipe = tiny(model="cnn-tiny", batchnorm=False, limit=3000, batch_size=32, schedule="none")
    config, model, card = train(recipe, mnist_dir, tmp_path / "cnn")
    assert config["model_kwargs"] == {"batchnorm": False} and "no BatchNorm" in card
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert config["test_accuracy"] > 0.3     # chance is 0.1
    # and the other way round: --batchnorm puts one after each hidden layer of the mlp
    config, model, card = train(tiny(batchnorm=True, hidden=[64, 32]), mnist_dir, tmp_path / "mlp")
    assert [m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm1d)] == [64, 32]
    assert "BatchNorm" in card and config["test_accuracy"] > 0.7


def test_hidden_sizes_shape_the_mlp(mnist_dir, tmp_path):
    config, model, card = train(tiny(hidden=[256, 128]), mnist_dir, tmp_path)
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears == [(784, 256), (256, 128), (128, 10)]
    assert config["params"] == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert config["model_kwargs"] == {"hidden": [256, 128]} and "hidden 256-128" in card
    with pytest.raises(EdgeDigitsError, match="for the mlp"):
        fit(tiny(model="cnn", hidden=[64]), mnist_dir, tmp_path / "cnn", log=lambda *_: None)


def test_gap_pool_has_no_pooling_layer(mnist_dir, tmp_path):
    config, model, card = train(tiny(model="cnn-tiny", pool="gap", schedule="none", limit=3000, batch_size=32), mnist_dir, tmp_path)
    pools = (nn.MaxPool2d, nn.AvgPool2d)
    assert not any(isinstance(m, pools) for m in model.modules())
    assert model.features(torch.zeros(1, 1, 28, 28)).shape[-2:] == (7, 7)    # stride-2 convs downsample
    assert config["pool"] == "gap" and "gap pool" in card and config["test_accuracy"] > 0.3


@pytest.mark.parametrize("loss", ["mse", "hinge", "huber"])
def test_each_loss_trains_above_chance(loss, mnist_dir, tmp_path):
    config, _, card = train(tiny(loss=loss), mnist_dir, tmp_path)
    assert config["recipe"]["loss"] == loss
    assert config["test_accuracy"] > 0.7          # chance is 0.1
    assert {"mse": "MSE", "hinge": "hinge", "huber": "Huber"}[loss] in card


def test_losses_score_what_they_say():
    y = torch.tensor([3, 7])
    sure = torch.full((2, 10), -10.0)
    sure[0, 3] = sure[1, 7] = 10.0
    wrong = sure.roll(1, 1)
    for loss in ("ce", "mse", "hinge", "huber"):
        recipe = Recipe(loss=loss, label_smoothing=0.0)
        assert loss_fn(sure, y, recipe) < 1e-3 < loss_fn(wrong, y, recipe)
    # hinge: zero once the right class leads every other by the margin (1), whatever the scale
    assert loss_fn(torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([1]), Recipe(loss="hinge")) == 0
    # huber on probabilities: quadratic below delta 0.1, linear above (MSE would be quadratic)
    p_wrong = loss_fn(wrong, y, Recipe(loss="huber")).item()
    assert p_wrong == pytest.approx((0.1 * (1 - 0.05) * 2) / 10, abs=1e-3)


def test_l1_shrinks_the_weights(mnist_dir, tmp_path):
    def weight_l1(model):
        return sum(p.abs().sum().item() for p in model.parameters() if p.ndim > 1)

    _, plain, _ = train(tiny(), mnist_dir, tmp_path / "plain")
    config, sparse, card = train(tiny(l1=1e-3), mnist_dir, tmp_path / "l1")
    assert weight_l1(sparse) < 0.7 * weight_l1(plain)
    assert config["recipe"]["l1"] == 1e-3 and "L1 0.001" in card
    assert config["test_accuracy"] > 0.5


def test_train_cli_records_the_options_and_refuses_bad_ones(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--model", "mlp", "--hidden", "64,32", "--dropout", "0", "--loss", "hinge",
               "--l1", "1e-5", "--batchnorm", "--epochs", "1", "--limit", "500", "--val-size", "200",
               "--no-augment", "all", "--data-dir", str(mnist_dir), "--out", str(out)])
    assert rc == 0
    config = json.loads((out / "model.json").read_text())
    assert config["model_kwargs"] == {"dropout": 0.0, "batchnorm": True, "hidden": [64, 32]}
    assert (config["recipe"]["loss"], config["recipe"]["l1"]) == ("hinge", 1e-5)
    capsys.readouterr()
    for bad in (["--dropout", "1.5"], ["--l1", "-1"], ["--hidden", "64,x"], ["--loss", "l2"]):
        with pytest.raises(SystemExit) as e:
            main(["train", *bad, "--out", str(tmp_path / "bad")])
        assert e.value.code == 2
    assert main(["train", "--model", "cnn", "--hidden", "64", "--out", str(tmp_path / "bad")]) == 2
    assert "hidden sizes are for the mlp" in capsys.readouterr().err


@pytest.mark.slow
def test_models_with_the_new_options_export_and_run_in_the_runtime(mnist_dir, mnist, tmp_path):
    """A cnn without BatchNorm, pooled by stride and GAP only, trained with hinge loss, and an mlp
    with two BatchNorm hidden layers: exported like any model, the runtime reads what PyTorch does."""
    from edgedigits.export.exporter import export
    from edgedigits.runtime import Recognizer
    from edgedigits.train.train import predict_logits

    images = mnist[2][:300].astype("float32") / 255.0
    runs = {"cnn": (tiny(model="cnn-tiny", pool="gap", batchnorm=False, dropout=0.3, loss="hinge", limit=1000,
                         batch_size=32, schedule="none"), ["onnx", "tflite"]),
            "mlp": (tiny(hidden=[64, 32], batchnorm=True, loss="mse"), ["onnx"])}
    for name, (recipe, formats) in runs.items():
        _, model, _ = train(recipe, mnist_dir, tmp_path / name)
        reference = predict_logits(model, torch.from_numpy(images[:, None]), "cpu").argmax(1).numpy()
        for path in export(tmp_path / name, formats, tmp_path / f"{name}-export", mnist_dir, log=lambda *_: None):
            predicted = Recognizer(path).predict(images).argmax(1)
            assert (predicted == reference).mean() >= 0.99, (name, path.name)
