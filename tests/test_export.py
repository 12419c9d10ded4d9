"""Exports: the formats table, parity of every shipped file in every runtime on real MNIST test
digits, the metadata contract read back by the runtime, a real export, and every bad input.

The shipped files must come from the shipped checkpoint: after retraining, `edgedigits export`
(then `edgedigits benchmark`) regenerates them, or these tests say so.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgedigits.common import sha256
from edgedigits.errors import EdgeDigitsError
from edgedigits.export import formats, metadata, runners
from edgedigits.export.benchmark import (FLOAT_MAX_DIFF, INT8_MAX_DROP, INT8_MIN_AGREEMENT, INT8_MAX_SIZE,
                                         failures, row_for)
from edgedigits.export.formats import FORMATS, RUNTIMES

README = Path(__file__).resolve().parents[1] / "README.md"
N_PARITY = 1000  # real test digits per format x runtime (0.10 points = 1 digit)
PAIRS = [(f.name, r) for f in FORMATS.values() if not f.reference for r in f.runtimes]


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edgedigits.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture(scope="module")
def digits(mnist):
    """The first N_PARITY MNIST test digits as float32 [N, 28, 28] in [0, 1], and their labels."""
    _, _, images, labels = mnist
    return images[:N_PARITY].astype(np.float32) / 255.0, labels[:N_PARITY]


@pytest.fixture(scope="module")
def reference(shipped_dir, digits):
    """PyTorch logits of the shipped checkpoint on the same digits."""
    return runners.predict(runners.load("pytorch", shipped_dir / "model.safetensors"), digits[0])


def shipped_file(shipped_dir, name) -> Path:
    path = shipped_dir / FORMATS[name].file
    assert path.exists(), f"{path} is missing: run `edgedigits export`"
    return path


# ------------------------------------------------------------------------------- formats table

def test_readme_formats_section_is_the_table():
    text = README.read_text() if README.exists() else ""
    start, end = "<!-- formats:start -->\n", "<!-- formats:end -->"
    if start not in text or end not in text:
        pytest.skip("README.md has no <!-- formats:start/end --> markers yet")
    assert text.split(start, 1)[1].split(end, 1)[0].strip() == formats.markdown_table()


def test_names_aliases_int8_and_suggestions():
    assert formats.get("TFLite-INT8").name == "tflite_int8"
    assert formats.get("litert").name == "tflite"
    assert formats.get("onnx2tf-int8").name == "tflite_onnx2tf_int8"
    assert [f.name for f in formats.resolve("tflite,onnx", int8=True)] == ["onnx_int8", "tflite_int8"]
    assert [f.name for f in formats.resolve(None)] == list(formats.EXPORTABLE)
    with pytest.raises(EdgeDigitsError, match="did you mean 'tflite'"):
        formats.get("tflit")
    with pytest.raises(EdgeDigitsError, match="valid formats: pytorch, onnx, onnx_int8"):
        formats.get("coreml")
    for f in FORMATS.values():  # every row is complete and consistent
        assert f.file.endswith(f.suffix) and f.runtimes and set(f.runtimes) <= set(RUNTIMES)
        assert f.layout == ("NHWC" if f.suffix == ".tflite" else "NCHW")
        assert f.int8 is None or FORMATS[f.int8].dtype == "int8"


# -------------------------------------------------------------------- parity of shipped files

@pytest.mark.parametrize("name,runtime", PAIRS, ids=[f"{n}-{r}" for n, r in PAIRS])
def test_parity_with_pytorch(shipped_dir, digits, reference, name, runtime):
    path = shipped_file(shipped_dir, name)
    pytest.importorskip(RUNTIMES[runtime].module)
    logits = runners.predict(runners.load(runtime, path), digits[0])
    assert logits.shape == reference.shape
    agreement = (logits.argmax(1) == reference.argmax(1)).mean()
    if FORMATS[name].dtype == "float32":
        assert agreement == 1.0, f"{name} in {runtime}: {agreement:.2%} argmax agreement"
        assert np.abs(logits - reference).max() <= FLOAT_MAX_DIFF
    else:
        assert agreement >= INT8_MIN_AGREEMENT, f"{name} in {runtime}: {agreement:.2%} argmax agreement"
        drop = (reference.argmax(1) == digits[1]).mean() - (logits.argmax(1) == digits[1]).mean()
        assert drop <= INT8_MAX_DROP + 1e-9, f"{name} in {runtime}: loses {drop:.2%} accuracy"


@pytest.mark.parametrize("name", formats.EXPORTABLE)
def test_shipped_file_contract(shipped_dir, name):
    """What an app developer relies on: dtypes, shapes, real int8 weights, metadata, size."""
    fmt, path = FORMATS[name], shipped_file(shipped_dir, name)
    meta = metadata.read(path)
    assert meta["source"]["sha256"] == metadata.sha256(shipped_dir / "model.safetensors"), \
        f"{path} was exported from another checkpoint: run `edgedigits export`"
    labels = shipped_labels(shipped_dir)
    assert meta["format"] == name and meta["dtype"] == fmt.dtype and meta["labels"] == labels
    assert meta["input"] == {"shape": list(fmt.shape), "layout": fmt.layout, "dtype": "float32", "range": [0.0, 1.0],
                             "ink": "white on black", "preprocess": "mnist-20x20-com"}
    assert meta["output"]["kind"] == "logits" and meta["normalization"]["where"] == "inside the model"
    assert meta["accuracy"]["n"] == 10000 and meta["accuracy"]["mnist_test"] >= 0.985   # "none" takes < 1%
    assert meta["output"]["none_label"] == "none" and 0.5 <= meta["output"]["none_threshold"] < 1
    from edgedigits.export.quantize import int8_weight_fraction

    share = int8_weight_fraction(path)
    if fmt.dtype == "int8":
        float_fmt = next(f for f in FORMATS.values() if f.int8 == name)
        float_meta = metadata.read(shipped_file(shipped_dir, float_fmt.name))
        assert share >= 0.95, f"only {share:.0%} of the weights are int8"
        assert float_meta["accuracy"]["mnist_test"] - meta["accuracy"]["mnist_test"] <= INT8_MAX_DROP + 1e-9
        size = path.stat().st_size / (shipped_dir / float_fmt.file).stat().st_size
        # the QDQ bookkeeping of the int8 ONNX (names, scales, float head) is ~16 KB: 31% here
        assert size <= (INT8_MAX_SIZE if fmt.suffix == ".tflite" else 0.32), f"{size:.1%} of the float file"
    else:
        assert share == 0.0
    if fmt.suffix == ".tflite":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        assert list(inp["shape"]) == [1, 28, 28, 1] and list(out["shape"]) == [1, len(labels)]
        assert inp["dtype"] == out["dtype"] == np.float32  # int8 inside, float32 I/O
    assert (shipped_dir / formats.LABELS_FILE).read_text() == "".join(f"{label}\n" for label in labels)


@pytest.mark.parametrize("name", formats.EXPORTABLE)
def test_runtime_reads_what_the_exporter_wrote(shipped_dir, digits, reference, name):
    runtime = pytest.importorskip("edgedigits.runtime")
    path = shipped_file(shipped_dir, name)
    recognizer = runtime.Recognizer(path)
    assert recognizer.metadata == metadata.read(path)
    assert list(recognizer.labels) == shipped_labels(shipped_dir)
    assert recognizer.model_id.startswith(f"edgedigits-cnn/{name}@")
    probs = recognizer.predict(digits[0])          # all N_PARITY: 99.8% of 200 would allow no miss
    assert np.allclose(probs.sum(1), 1, atol=1e-4)
    assert (probs.argmax(1) == reference.argmax(1)).mean() >= INT8_MIN_AGREEMENT


def shipped_labels(folder) -> list:
    """The shipped model's labels: the ten digits, and "none" for the 11-class reader model."""
    return json.loads((folder / "model.json").read_text())["labels"]


# ----------------------------------------------------------------------------- a real export

@pytest.mark.slow
def test_export_onnx_int8_and_tflite_into_tmp(shipped_dir, mnist_dir, tmp_path):
    from edgedigits.export.exporter import export

    log = []
    written = export(shipped_dir, ["onnx", "onnx-int8", "tflite"], tmp_path, mnist_dir, log=log.append)
    assert [p.name for p in written] == ["model.onnx", "model_int8.onnx", "model_float32.tflite"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(p.name for p in written), *(p.name + ".sha256" for p in written), "labels.txt"])
    for path in written:
        assert (tmp_path / (path.name + ".sha256")).read_text().split() == [sha256(path), path.name]
        meta = metadata.read(path)
        shipped_meta = metadata.read(shipped_dir / path.name)
        assert meta["source"] == shipped_meta["source"]
        assert abs(meta["accuracy"]["mnist_test"] - shipped_meta["accuracy"]["mnist_test"]) <= 0.0005
    assert len(log) == 3 and all("accuracy" in line for line in log)


@pytest.mark.slow
def test_export_onnx2tf_with_a_relative_out(shipped_dir, mnist_dir, tmp_path):
    """The second converter end to end, as `make benchmark` calls it: --out relative to the cwd
    (onnx2tf runs in its own working folder, so every path it gets must be absolute)."""
    pytest.importorskip("onnx2tf")
    pytest.importorskip("tensorflow")
    result = run_cli("export", "--weights", shipped_dir, "--format", "onnx2tf", "--out", "out",
                     "--data-dir", mnist_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "out" / FORMATS["tflite_onnx2tf"].file
    meta, shipped_meta = metadata.read(path), metadata.read(shipped_dir / path.name)
    assert meta["source"] == shipped_meta["source"]
    assert meta["accuracy"]["mnist_test"] == pytest.approx(shipped_meta["accuracy"]["mnist_test"], abs=1e-4)


@pytest.mark.slow
def test_failed_export_leaves_no_partial_file(shipped_dir, mnist_dir, tmp_path, monkeypatch):
    from edgedigits.export import exporter

    def broken(model, path):
        path.write_bytes(b"TFL3 half a model")
        raise exporter.ExportError("simulated converter crash")

    monkeypatch.setattr(exporter, "export_tflite", broken)
    with pytest.raises(exporter.ExportError, match="simulated"):
        exporter.export(shipped_dir, ["onnx", "tflite"], tmp_path, mnist_dir)
    # finished before the crash, complete, with its checksum
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.sha256"]
    assert metadata.read(tmp_path / "model.onnx")["format"] == "onnx"


# ------------------------------------------------------------------------------ benchmark

def test_benchmark_one_file_json(shipped_dir, mnist_dir, tmp_path):
    result = run_cli("benchmark", "--model", shipped_file(shipped_dir, "tflite_int8"), "--runs", 20,
                     "--data-dir", mnist_dir, "--json", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = {(r["format"], r["runtime"]): r for r in report["rows"]}
    assert set(rows) == {("pytorch", "pytorch"), ("tflite_int8", "litert")}
    row = rows["tflite_int8", "litert"]
    assert row["status"] == "ok" and row["batch64"] in ("resize", "loop") and row["latency_ms"] > 0
    assert row["agreement"] >= INT8_MIN_AGREEMENT and row["accuracy"] >= 0.985 and row["size_kb"] < 100
    # a one-file run writes its own report, never over the full one shipped beside the exports
    assert json.loads((tmp_path / "benchmark-model_int8.json").read_text())["rows"] == report["rows"]
    assert "| tflite_int8 | LiteRT interpreter | ok |" in (tmp_path / "benchmark-model_int8.md").read_text()
    assert not (tmp_path / "benchmark.md").exists()
    assert failures(report) == [] and failures(report, min_accuracy=0.9999)  # the --min-accuracy gate


def test_benchmark_flags_missing_and_stale_exports(shipped_dir, digits, reference, tmp_path):
    data = {"x": digits[0][:100], "y": digits[1][:100], "ref": reference[:100]}
    missing, runner = row_for(FORMATS["onnx"], "onnxruntime", tmp_path / "model.onnx", "0" * 64, data, 1)
    assert missing["status"] == "missing" and "edgedigits export --format onnx" in missing["note"] and runner is None
    path = shipped_file(shipped_dir, "onnx")
    fresh, _ = row_for(FORMATS["onnx"], "onnxruntime", path, metadata.sha256(shipped_dir / "model.safetensors"),
                       data, 1)
    stale, _ = row_for(FORMATS["onnx"], "onnxruntime", path, "0" * 64, data, 1)
    assert fresh["status"] == "ok" and stale["status"] == "stale" and fresh["agreement"] == 1.0


# ----------------------------------------------------------------------------- bad inputs

def test_unknown_format_suggests_and_lists(tmp_path):
    result = run_cli("export", "--format", "onnx,tflite-in8", "--out", tmp_path)
    assert_one_line_error(result, "unknown format 'tflite-in8'", "did you mean 'tflite_int8'", "valid formats:")
    assert list(tmp_path.iterdir()) == []


def test_missing_and_corrupt_weights(tmp_path):
    assert_one_line_error(run_cli("export", "--weights", tmp_path / "nope.safetensors", "--out", tmp_path / "out"),
                          "no such checkpoint")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes(b"\x00garbage" * 100)
    (bad / "model.json").write_text(json.dumps({"model": "cnn"}))
    assert_one_line_error(run_cli("export", "--weights", bad, "--format", "onnx"), "not a valid checkpoint")
    assert sorted(p.name for p in bad.iterdir()) == ["model.json", "model.safetensors"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("suffix", [".onnx", ".tflite"])
def test_corrupt_model_given_to_benchmark(shipped_dir, tmp_path, suffix):
    garbage = tmp_path / f"garbage{suffix}"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    assert_one_line_error(run_cli("benchmark", "--model", garbage), garbage.name, "cannot load it")
    truncated = tmp_path / f"truncated{suffix}"
    real = shipped_file(shipped_dir, "onnx_int8" if suffix == ".onnx" else "tflite_int8").read_bytes()
    truncated.write_bytes(real[: len(real) // 2])
    assert_one_line_error(run_cli("benchmark", "--model", truncated), truncated.name, "cannot load it")
    assert_one_line_error(run_cli("benchmark", "--model", tmp_path / f"absent{suffix}"), "no such file")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([garbage.name, truncated.name])
