"""Every exported format through every runtime that loads it, on the 10k MNIST test digits, against
the PyTorch checkpoint: accuracy, argmax agreement, logit differences, size, latency, throughput.

    rows = benchmark(Path("models/cnn/model.safetensors"), Path("models/cnn"))["rows"]

Latency is the median of many batch-1 calls on one thread (what a camera loop pays per digit);
throughput is digits per second at batch 64 ("batched" for a dynamic batch, "resize" when a
fixed-batch .tflite accepts resize_tensor_input, "loop" when its graph is pinned to batch 1).
"""

import json
import os
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from edgedigits.common import atomic_write
from edgedigits.errors import EdgeDigitsError

from . import metadata, runners
from .formats import FORMATS, RUNTIMES, Format, by_suffix, resolve, shown

FLOAT_MAX_DIFF = 1e-4
INT8_MAX_DROP = 0.001        # accuracy points, as a fraction
INT8_MIN_AGREEMENT = 0.998
INT8_MAX_SIZE = 0.30         # of the float32 file
INT8_TFLITE_MAX_MS = 0.10
PACKAGES = ("torch", "onnxruntime", "opencv-python-headless", "ai-edge-litert")


def format_of(path: Path) -> Format:
    """The table row of a file: from its metadata, else from its suffix and weight dtype."""
    path = Path(path)
    suffixes = sorted({f.suffix for f in FORMATS.values()})
    if path.suffix not in suffixes:
        raise EdgeDigitsError(f"{path}: not a {', '.join(suffixes)} file")
    if path.suffix == FORMATS["pytorch"].suffix:
        return FORMATS["pytorch"]
    try:
        meta = metadata.read(path)
    except Exception:  # unreadable: let the runtimes say why
        meta = None
    if meta and meta.get("format") in FORMATS:
        return FORMATS[meta["format"]]
    from .quantize import int8_weight_fraction

    try:
        int8 = int8_weight_fraction(path) > 0.5
    except Exception:
        int8 = False
    return by_suffix(path.suffix, int8)


def parity(runner, x: np.ndarray, ref: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, argmax agreement and logit differences against the PyTorch logits `ref`."""
    logits = runners.predict(runner, x)
    diff = np.abs(logits - ref)
    pred = logits.argmax(1)
    return {"accuracy": float((pred == labels).mean()), "agreement": float((pred == ref.argmax(1)).mean()),
            "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}


def speed(measured: list, x: np.ndarray, runs: int, rounds: int = 10) -> None:
    """Latency (batch 1) and throughput (batch 64) of every (row, runner), filled into the rows.

    The runners take turns, round after round, so a burst of load from other processes hits them
    all alike; each keeps its quietest round (the median of its batch-1 calls in that round, its
    batch-64 call): other processes only ever add time, which is why timeit reports a minimum."""
    per_round = max(1, runs // rounds)
    batch = x[:64]
    latency = [[] for _ in measured]
    per_batch = [[] for _ in measured]
    for _, runner in measured:  # warm up
        for i in range(10):
            runner.predict(x[i][None])
        runner.predict(batch)
    for r in range(rounds):
        for k, (_, runner) in enumerate(measured):
            times = []
            for i in range(r * per_round, (r + 1) * per_round):
                t = time.perf_counter()
                runner.predict(x[i % len(x)][None])
                times.append(time.perf_counter() - t)
            latency[k].append(float(np.median(times)))
            t = time.perf_counter()
            runner.predict(batch)
            per_batch[k].append(time.perf_counter() - t)
    for k, (row, runner) in enumerate(measured):
        row.update(latency_ms=min(latency[k]) * 1000, throughput=64 / min(per_batch[k]), batch64=runner.batching)


def fits(runner, path: Path, x: np.ndarray, classes: int) -> None:
    """Run two digits: a file whose input is not a 28x28 digit, or that gives another number of
    scores than the checkpoint has classes, is an EdgeDigitsError (a row with status error)."""
    try:
        out = np.asarray(runner.predict(x))
    except Exception as e:          # each engine has its own exception types for a bad input
        first = (" ".join(str(e).split()) or type(e).__name__)[:160]
        raise EdgeDigitsError(f"{shown(path)}: fails on a 28x28 digit ({first})") from None
    if out.shape != (len(x), classes):
        raise EdgeDigitsError(f"{shown(path)}: gives {list(out.shape[1:])} scores per digit, the checkpoint "
                              f"[{classes}]")


def row_for(fmt: Format, runtime: str, path: Path, sha: str, data: dict, threads: int):
    """(row, runner) for one file in one runtime, its parity measured; runner is None unless the
    file loaded: the status then says why (missing, skipped, error)."""
    row = {"format": fmt.name, "runtime": runtime, "file": shown(path), "dtype": fmt.dtype, "status": "ok",
           "note": "", "size_kb": round(path.stat().st_size / 1024, 1) if path.exists() else None}
    if not path.exists():
        return {**row, "status": "missing", "note": f"run: edgedigits export --format {fmt.name}"}, None
    try:
        __import__(RUNTIMES[runtime].module)
    except ImportError:
        return {**row, "status": "skipped", "note": f"{RUNTIMES[runtime].title} not installed "
                f"({RUNTIMES[runtime].install})"}, None
    try:
        runner = runners.load(runtime, path, threads)
        fits(runner, path, data["x"][:2], data["ref"].shape[1])
        row.update(parity(runner, data["x"], data["ref"], data["y"]))
    except EdgeDigitsError as e:
        return {**row, "status": "error", "note": str(e)}, None
    meta = metadata.read(path) if path.suffix != ".safetensors" else None
    if meta and meta.get("source", {}).get("sha256") not in (None, sha):
        row.update(status="stale", note="exported from another checkpoint; run edgedigits export")
    return row, runner


def reference(weights: Path, data_dir, threads: int) -> dict:
    from edgedigits.train.checkpoint import resolve_weights
    from edgedigits.train.data import load_mnist

    weights = resolve_weights(weights)
    torch_runner = runners.load("pytorch", weights, threads)  # a bad checkpoint fails here, early
    _, _, images, labels = load_mnist(data_dir)
    x = images.astype(np.float32) / 255.0
    return {"weights": weights, "x": x, "y": labels, "ref": runners.predict(torch_runner, x, 1000),
            "config": torch_runner.config, "sha256": metadata.sha256(weights)}


def benchmark(weights: Path, model_dir: Path = None, formats=None, data_dir=None, model_file: Path = None,
              threads: int = 1, runs: int = 300, log=None) -> dict:
    """Measure the files in model_dir (default: the weights' folder) or one `model_file`."""
    log = log or (lambda message: print(message, file=sys.stderr))
    if model_file is not None:
        model_file = Path(model_file)
        if not model_file.is_file():
            raise EdgeDigitsError(f"{model_file}: no such file")
        fmt = format_of(model_file)
        loaded = {}
        for runtime in fmt.runtimes:  # a corrupt file fails here, before the slow part
            try:
                loaded[runtime] = runners.load(runtime, model_file, threads)
            except EdgeDigitsError as e:
                loaded[runtime] = e
        if all(isinstance(v, EdgeDigitsError) for v in loaded.values()):
            raise next(iter(loaded.values()))
        jobs = [(fmt, runtime, model_file) for runtime in fmt.runtimes]
    else:
        chosen = resolve(formats, default=list(FORMATS))
    data = reference(weights, data_dir, threads)
    if model_file is None:
        folder = Path(model_dir) if model_dir else data["weights"].parent
        jobs = [(f, r, data["weights"] if f.reference else folder / f.file) for f in chosen for r in f.runtimes]
    if not any(fmt.reference for fmt, _, _ in jobs):
        jobs.insert(0, (FORMATS["pytorch"], "pytorch", data["weights"]))
    rows, measured = [], []
    for fmt, runtime, path in jobs:
        t = time.perf_counter()
        row, runner = row_for(fmt, runtime, path, data["sha256"], data, threads)
        rows.append(row)
        if runner is not None:
            measured.append((row, runner))
        log(f"{fmt.name:<20} {RUNTIMES[runtime].title:<19} {row['status']:<8} ({time.perf_counter() - t:.1f} s)")
    t = time.perf_counter()
    speed(measured, data["x"], runs)
    log(f"{'(speed)':<20} {len(measured)} runners, {runs} batch-1 calls each ({time.perf_counter() - t:.1f} s)")
    return {"model": f"edgedigits-{data['config']['model']}", "weights": shown(data["weights"]),
            "sha256": data["sha256"], "n": int(len(data["y"])), "threads": threads, "latency_runs": runs,
            "machine": machine(), "rows": rows, "targets": targets(rows)}


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "load": load, "python": platform.python_version(),
            "packages": versions}


def targets(rows: list) -> list:
    """The issue's targets, each with the measured value and whether it is met."""
    ok = [r for r in rows if r["status"] in ("ok", "stale")]
    by = {(r["format"], r["runtime"]): r for r in ok}
    ref = by.get(("pytorch", "pytorch"))
    out = []
    for r in ok:
        fmt = FORMATS[r["format"]]
        name = f"{r['format']} / {RUNTIMES[r['runtime']].title}"
        if fmt.reference:
            continue
        if fmt.dtype == "float32":
            out.append({"target": f"{name}: agreement 100.00%, max abs diff <= {FLOAT_MAX_DIFF:g}",
                        "value": f"{r['agreement']:.2%}, {r['max_abs_diff']:.1e}",
                        "met": r["agreement"] == 1.0 and r["max_abs_diff"] <= FLOAT_MAX_DIFF})
            continue
        if ref:
            drop = ref["accuracy"] - r["accuracy"]
            out.append({"target": f"{name}: accuracy within 0.10 points of float32",
                        "value": f"{r['accuracy']:.2%} ({-drop * 100:+.2f} points)", "met": drop <= INT8_MAX_DROP + 1e-12})
        out.append({"target": f"{name}: agreement with float32 >= {INT8_MIN_AGREEMENT:.1%}",
                    "value": f"{r['agreement']:.2%}", "met": r["agreement"] >= INT8_MIN_AGREEMENT})
        float_fmt = next((f for f in FORMATS.values() if f.int8 == fmt.name), None)
        float_row = next((x for x in ok if float_fmt and x["format"] == float_fmt.name), None)
        if float_row and r["runtime"] == fmt.runtimes[0]:
            share = r["size_kb"] / float_row["size_kb"]
            out.append({"target": f"{r['format']}: file <= {INT8_MAX_SIZE:.0%} of {float_fmt.file}",
                        "value": f"{share:.1%} ({r['size_kb']:.1f} / {float_row['size_kb']:.1f} KB)",
                        "met": share <= INT8_MAX_SIZE})
        if r["format"] == "tflite_int8" and ref:
            ratio = ref["latency_ms"] / r["latency_ms"]
            out.append({"target": f"{name}: <= {INT8_TFLITE_MAX_MS:.2f} ms/digit on one thread, faster than PyTorch eager",
                        "value": f"{r['latency_ms']:.3f} ms, {ratio:.1f}x faster than PyTorch ({ref['latency_ms']:.3f} ms)",
                        "met": r["latency_ms"] <= INT8_TFLITE_MAX_MS and ratio > 1})
    return out


def failures(report: dict, min_accuracy: float = None) -> list:
    """Rows that make the command fail: not loadable, missing, stale, or under --min-accuracy."""
    bad = [f"{r['format']}/{r['runtime']}: {r['status']}" for r in report["rows"] if r["status"] not in ("ok", "skipped")]
    if min_accuracy is not None:
        bad += [f"{r['format']}/{r['runtime']}: accuracy {r['accuracy']:.2%} < {min_accuracy:.2%}"
                for r in report["rows"] if r["status"] == "ok" and r["accuracy"] < min_accuracy]
    return bad


def _cell(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def to_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Benchmark: {report['model']}",
             "",
             f"`{Path(report['weights']).name}` (sha256 `{report['sha256'][:12]}`) against every export, on the "
             f"{report['n']:,} MNIST test digits. {report['threads']} thread(s); latency = median of "
             f"batch-1 calls ({report['latency_runs']} per row in 10 rounds taken in turn, the quietest "
             f"round kept); throughput at batch 64 (batched, resized, or a loop over batch 1 when the graph is pinned to it). "
             f"{m['cpu']}, {m['cores']} cores, load average {m['load']}; "
             + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + ".",
             "",
             "| format | runtime | status | size (KB) | accuracy | agreement | max abs diff | mean abs diff "
             "| ms/digit | digits/s @64 | batch 64 |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in report["rows"]:
        ok = r["status"] in ("ok", "stale")
        status = r["status"] + (f": {r['note']}" if r["note"] else "")
        lines.append(" | ".join([
            f"| {r['format']}", RUNTIMES[r["runtime"]].title, status.replace("|", "/"), _cell(r["size_kb"], ".1f"),
            _cell(r.get("accuracy") if ok else None, ".2%"), _cell(r.get("agreement") if ok else None, ".2%"),
            _cell(r.get("max_abs_diff") if ok else None, ".1e"), _cell(r.get("mean_abs_diff") if ok else None, ".1e"),
            _cell(r.get("latency_ms") if ok else None, ".3f"), _cell(r.get("throughput") if ok else None, ",.0f"),
            (r.get("batch64") or "") + " |"]))
    if report["targets"]:
        lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |" for t in report["targets"]]
    if report.get("command"):
        lines += ["", f"Reproduce: `{report['command']}`"]
    return "\n".join(lines) + "\n"


def report_stem(formats_arg=None, model_file=None) -> str:
    """`benchmark` for a run over every format; `benchmark-<what>` for a partial one, so that a
    quick look at one format never replaces the full report shipped beside the exports."""
    if model_file is not None:
        return f"benchmark-{Path(model_file).stem}"
    if formats_arg:
        return "benchmark-" + "-".join(f.name for f in resolve(formats_arg))
    return "benchmark"


def write_reports(report: dict, out_dir: Path, stem: str = "benchmark") -> list:
    """<stem>.md and <stem>.json, each written to a temporary name then renamed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in ((f"{stem}.md", to_markdown(report)), (f"{stem}.json", json.dumps(report, indent=2) + "\n")):
        atomic_write(out_dir / name, text)
        paths.append(out_dir / name)
    return paths
