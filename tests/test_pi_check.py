"""`make pi-check`'s two halves without qemu: pi/probe.py run here on real data, and pi/report.py
comparing it with itself (a pass) and with doctored copies (each difference a failure)."""

import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PI = Path(__file__).resolve().parents[1] / "pi"


def load_report():
    spec = importlib.util.spec_from_file_location("pi_report", PI / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def probe(tmp_path_factory, mnist_dir, paper_dir):
    """One real probe run on this machine: (probe.json, logits)."""
    tmp = tmp_path_factory.mktemp("pi")
    env = dict(os.environ, EDGEDIGITS_DATA=str(mnist_dir))
    for args in (["--prepare", tmp / "data", "--paper", paper_dir.parent], [tmp / "out", "--data", tmp / "data"]):
        result = subprocess.run([sys.executable, PI / "probe.py", *map(str, args)], capture_output=True, text=True,
                                timeout=600, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
    return load_report().load(tmp / "out")


def test_probe_runs_every_check(probe):
    result, logits = probe
    assert len(logits) >= 6 and all(v.shape == (1000, 11) for v in logits.values())   # 4 .tflite, 2 .onnx
    assert {"model_int8.tflite/litert", "model.onnx/onnxruntime", "model.onnx/opencv"} <= set(logits)
    jobs = result["jobs"]
    assert all(job["rc"] == 0 for job in jobs.values()), jobs
    assert len(jobs["paper"]["read"]) >= 15 and len(jobs["paper-hard"]["read"]) >= 10
    assert jobs["camera"]["readings"] and all(r.startswith("frame ") for r in jobs["camera"]["readings"])
    assert jobs["imports"]["heavy"] == "none"


def test_report_passes_on_identical_runs_and_fails_on_each_difference(probe):
    report = load_report()
    result, logits = probe
    lines, failures = report.compare(result, result, logits, logits)
    assert failures == [] and "identical readings" in "\n".join(lines)
    assert "| model_int8.tflite/litert | 1000 | 1000/1000 | 0.00e+00 |" in "\n".join(lines)
    assert "uint8: 0 of" in "\n".join(lines) and "float32: 0 of" in "\n".join(lines)

    flipped = {k: v.copy() for k, v in logits.items()}
    flipped["model_int8.tflite/litert"][7] = flipped["model_int8.tflite/litert"][7][::-1]   # another argmax
    assert any("model_int8.tflite/litert: argmax differs" in f for f in report.compare(result, result, logits,
                                                                                         flipped)[1])
    other = copy.deepcopy(result)
    photo = sorted(other["jobs"]["paper"]["read"])[0]
    other["jobs"]["paper"]["read"][photo] = ["123"]
    other["jobs"]["camera"]["readings"] = other["jobs"]["camera"]["readings"][:-1]
    other["jobs"]["imports"]["heavy"] = "torch"
    failures = report.compare(result, other, logits, logits)[1]
    assert any(photo in f for f in failures) and any(f.startswith("camera") for f in failures)
    assert any("imported torch" in f for f in failures)


def test_report_writes_between_the_markers(probe, tmp_path):
    report = load_report()
    doc = tmp_path / "raspberry-pi.md"
    doc.write_text(f"# Pi\n\nbefore\n\n{report.BEGIN}\nold\n{report.END}\n\nafter\n")
    out = tmp_path / "out"
    out.mkdir()
    result, logits = probe
    (out / "probe.json").write_text(json.dumps({k: v for k, v in result.items() if k != "primitives"}))
    np.savez(out / "logits.npz", **logits)
    np.savez(out / "primitives.npz", **result["primitives"])
    run = subprocess.run([sys.executable, PI / "report.py", "--x86", out, "--arm", out, "--wheel",
                          "dist/edgedigits-0.1.0-py3-none-any.whl", "--doc", doc], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    text = doc.read_text()
    assert "Result: **PASS**" in text and "old" not in text
    assert text.startswith("# Pi\n\nbefore\n") and text.endswith(f"{report.END}\n\nafter\n")
