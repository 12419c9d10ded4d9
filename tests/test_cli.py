"""The console command: help on every subcommand, one-line errors and non-zero exits on bad input."""

import json
import shutil
import subprocess
import sys

import pytest

from edgedigits.cli import build_parser, main


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "edgedigits.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_help_lists_and_every_subcommand_has_help(capsys):
    names = subcommands()
    assert {"train", "evaluate", "models", "augment-preview"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert "usage: edgedigits " + name in capsys.readouterr().out


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in err


def test_bad_argument():
    assert_one_line_error(run_cli("train", "--epochs", "-3"), "must be positive")
    assert_one_line_error(run_cli("train", "--model", "resnet"), "invalid choice")


def test_output_piped_into_head_ends_quietly():
    """`edgedigits ... | head -1`: the reader closes the pipe after one line; the command stops
    without a traceback (exit 141, as a shell reports SIGPIPE)."""
    proc = subprocess.Popen([sys.executable, "-m", "edgedigits.cli", "formats"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0)
    proc.stdout.close()                    # nothing will read the table
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == "", err


def test_missing_weights(tmp_path):
    assert_one_line_error(run_cli("evaluate", "--weights", tmp_path / "nope.safetensors"), "no such checkpoint")


def test_corrupt_data_is_refused_before_training(mnist_dir, tmp_path):
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mnist_dir / name, tmp_path / name)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    result = run_cli("train", "--data-dir", tmp_path, "--out", tmp_path / "run", "--epochs", "1")
    assert_one_line_error(result, "train-images-idx3-ubyte.gz", "sha256")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_evaluate_json_on_shipped_model(mnist_dir, tmp_path):
    result = run_cli("evaluate", "--data-dir", mnist_dir, "--out", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 10000 and 0.985 < report["accuracy"] <= 1      # "none" takes under 1%
    assert report["digit_outputs_accuracy"] >= 0.996                        # the digit classes keep MNIST
    assert set(report["per_class"]) == {str(d) for d in range(10)}
    assert all(0.95 < m["recall"] <= 1 for m in report["per_class"].values())


def test_models_lists_params_and_macs():
    result = run_cli("models")
    assert result.returncode == 0
    assert all(name in result.stdout for name in ("mlp", "cnn", "cnn-tiny"))


def test_option_names_have_one_home_each():
    """The trainer's choices live in train/names.py (no torch: --help stays instant), the runtime's
    backends in runtime/recognizer.py, the extras in pyproject.toml; here each user of them agrees."""
    import tomllib
    from dataclasses import fields
    from pathlib import Path

    import torch

    from edgedigits.cli import DISTRIBUTIONS, extra_for
    from edgedigits.runtime import cli as runtime_cli
    from edgedigits.runtime.recognizer import BACKENDS
    from edgedigits.train import compare, names, train
    from edgedigits.train.augment import AugmentConfig
    from edgedigits.train.models import ACTIVATIONS, MODELS, POOLS, build_model

    assert tuple(MODELS) == names.MODEL_NAMES and tuple(ACTIVATIONS) == names.ACTIVATION_NAMES
    assert set(POOLS) < set(names.POOL_NAMES)
    for pool in names.POOL_NAMES:
        build_model("cnn-tiny", pool=pool)
    assert tuple(f.name for f in fields(AugmentConfig) if f.type in (bool, "bool")) == names.AUG_NAMES
    logits, y = torch.randn(4, 10), torch.tensor([0, 1, 2, 3])
    model = build_model("mlp")
    for loss in names.LOSS_NAMES:
        assert train.loss_fn(logits, y, train.Recipe(loss=loss)).item() >= 0
    for optimizer in names.OPTIMIZER_NAMES:
        for schedule in names.SCHEDULE_NAMES:
            recipe = train.Recipe(optimizer=optimizer, schedule=schedule, epochs=1)
            train.make_scheduler(train.make_optimizer(model, recipe), recipe, 1)

    parsers = next(a for a in build_parser()._actions if a.dest == "command").choices
    options = {a.dest: a.choices for a in parsers["train"]._actions}
    assert (options["model"], options["activation"], options["pool"], options["loss"], options["optimizer"],
            options["schedule"]) == (names.MODEL_NAMES, names.ACTIVATION_NAMES, names.POOL_NAMES,
                                     names.LOSS_NAMES, names.OPTIMIZER_NAMES, names.SCHEDULE_NAMES)
    assert set(options["no_augment"]) == {*names.AUG_NAMES, "all"}
    assert compare.CHOICES == {"model": names.MODEL_NAMES, "activation": names.ACTIVATION_NAMES,
                               "pool": names.POOL_NAMES, "loss": names.LOSS_NAMES,
                               "optimizer": names.OPTIMIZER_NAMES, "schedule": names.SCHEDULE_NAMES}
    for command in ("recognize", "eval-paper", "bench-runtime"):
        assert next(a for a in parsers[command]._actions if a.dest == "backend").choices is BACKENDS
    assert runtime_cli.BACKENDS is BACKENDS

    # a missing module's hint names the extra of pyproject.toml that installs it (read from the installed
    # package's metadata: a venv set up before an extra changed needs `make setup` again)
    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for module in ("torch", "safetensors", "tqdm", "matplotlib", "onnx", "litert_torch", "tensorflow", "cv2",
                   "onnxruntime"):
        extra = extra_for(module)
        dist = DISTRIBUTIONS.get(module, module).replace("_", "-")
        assert any(r.startswith(dist) for r in extras[extra]), (module, extra)
    assert extra_for("no_such_module") is None
