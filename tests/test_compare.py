"""`edgedigits compare`: every combination x seed trained on the same split, a report with the
spread over seeds, and a rerun that skips finished runs and resumes an interrupted one."""

import json

import pytest

from edgedigits.cli import main
from edgedigits.errors import EdgeDigitsError
from edgedigits.train.compare import compare, make_recipe, parse_setting, same_recipe

TINY = {"model": "mlp", "epochs": 2, "limit": 400, "val_size": 300, "batch_size": 64, "augment": False}


def test_compare_resumes_after_an_interruption(mnist_dir, tmp_path):
    vary = {"activation": ["relu", "elu"]}
    seen = []

    def stop_in_the_third_run(run, message):
        seen.append(run)
        if run == "activation=elu,seed=0" and message.startswith("epoch   1"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compare(vary, TINY, 2, tmp_path, mnist_dir, threads=1, on_log=stop_in_the_third_run)
    runs = tmp_path / "runs"
    done = [runs / "activation=relu,seed=0", runs / "activation=relu,seed=1"]
    stopped = runs / "activation=elu,seed=0"
    assert all((d / "result.json").exists() for d in done)
    assert not (stopped / "result.json").exists() and (stopped / "last.pt").exists()
    assert len(json.loads((stopped / "history.json").read_text())) == 1
    stamps = [(d / "result.json").stat().st_mtime_ns for d in done]
    first = json.loads((tmp_path / "report.json").read_text())
    assert (first["finished"], first["planned"]) == (2, 4) and len(first["summary"]) == 1

    seen.clear()
    report = compare(vary, TINY, 2, tmp_path, mnist_dir, threads=1, on_log=lambda run, m: seen.append(run))
    assert not any(run.startswith("activation=relu") for run in seen)          # finished: not trained again
    assert [(d / "result.json").stat().st_mtime_ns for d in done] == stamps
    assert "resumed from" in (stopped / "train.log").read_text()
    assert [h["epoch"] for h in json.loads((stopped / "history.json").read_text())] == [1, 2]
    assert (report["finished"], report["planned"]) == (4, 4)

    # one split for every run, the seed changes the weights; the report says mean and spread
    splits = {json.dumps(json.loads((d / "model.json").read_text())["data"]["split"]) for d in runs.iterdir()}
    assert len(splits) == 1
    for row in report["summary"]:
        accs = [r["test_accuracy"] for r in report["runs"] if r["recipe"]["activation"] == row["settings"]["activation"]]
        assert len(accs) == 2 and accs[0] != accs[1]
        assert row["test_accuracy_min"] == min(accs) and row["test_accuracy_mean"] == pytest.approx(sum(accs) / 2)
        assert row["test_accuracy_mean"] > 0.5 and row["params"] == 101_770
    text = (tmp_path / "report.md").read_text()
    assert "| relu |" in text and "| elu |" in text and "±" in text
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_compare_command_line(mnist_dir, tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--vary", "hidden=32,64+32", "--set", "model=mlp", "--set", "val-size=300",
            "--seeds", "1", "--epochs", "1", "--limit", "300", "--threads", "1", "--data-dir", str(mnist_dir),
            "--out", str(out)]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert [r["params"] for r in report["summary"]] == [784 * 32 + 32 + 330, 784 * 64 + 64 + 64 * 32 + 32 + 330]
    assert "--vary hidden=32,64+32" in report["command"]
    assert "| 64+32 |" in capsys.readouterr().out
    # a rerun with other settings into the same folder is refused, not mixed in
    assert main(args[:-2] + ["--epochs", "2", "--out", str(out)]) == 2
    assert "other settings" in capsys.readouterr().err


def test_compare_refuses_what_it_cannot_run(capsys, tmp_path):
    with pytest.raises(EdgeDigitsError, match="cannot be varied"):
        parse_setting("colour=red,blue", many=True)
    with pytest.raises(EdgeDigitsError, match="choose from"):
        parse_setting("activation=relu,swish", many=True)
    with pytest.raises(EdgeDigitsError, match="on or off"):
        parse_setting("batchnorm=on,maybe", many=True)
    assert parse_setting("dropout=0,0.5", many=True) == ("dropout", [0.0, 0.5])
    assert parse_setting("weight-decay=0", many=False) == ("weight_decay", 0.0)
    assert main(["compare", "--vary", "hidden=64", "--out", str(tmp_path)]) == 2    # the cnn has no hidden sizes
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "for the mlp" in err
    assert not (tmp_path / "runs").exists()


def test_a_run_folder_matches_its_recipe_across_trainer_versions():
    from dataclasses import asdict

    recipe = make_recipe(TINY, {"activation": "elu"}, seed=1, threads=1)
    stored = json.loads(json.dumps(asdict(recipe)))
    assert same_recipe(stored, recipe)
    older = {k: v for k, v in stored.items() if k != "l1"}      # written before the trainer had --l1
    assert same_recipe(older, recipe)
    assert not same_recipe({**stored, "epochs": 5}, recipe)
    assert not same_recipe(older, make_recipe(TINY, {"activation": "elu", "l1": 1e-4}, seed=1, threads=1))
    assert not same_recipe({**stored, "something_else": 1}, recipe)
