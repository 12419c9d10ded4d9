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
