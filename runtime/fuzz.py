"""`edgedigits fuzz`: hostile inputs for the runtime, seeded and replayable, counted by outcome.

    edgedigits fuzz --images 10000 --models 1000 --seed 0      # the long run (make fuzz)
    edgedigits fuzz --replay images:4711 --seed 0               # one case again, in this process

Cases (each from `np.random.default_rng([seed, kind, i])`, so case i of a seed is always the same):
  images   arrays and encoded files for `read_page` / `load_image`: noise of every grain (uniform,
           salt, blurred at 1-12 px, Gaussian), flat, gradients, stripes, checkerboards, drawn digits
           and scribbles, extreme sizes and aspect ratios (1x1 to 2.5 MP), 1-4 channels, odd dtypes,
           and PNG/JPEG/BMP/GIF/WebP/TIFF files with flipped bytes, cut short or with a patched size
  models   the shipped .onnx and .tflite with flipped bytes, cut short, spliced or zeroed runs,
           loaded by onnxruntime, OpenCV's reader or LiteRT, then run on a digit
  text     labels.csv bytes and model metadata (JSON) for their parsers; `predict` inputs

Images and models run in a worker process; a worker that dies is a `crash` (its case is named and
the worker restarted), one that outlives the wall limit is a `hang`. Outcomes: ok (a result),
refused (an EdgeDigitsError: one line), slow (a page over the time bound: 1 s of CPU per MP read,
at least 1 s), crash, hang, uncaught (any other exception). The run fails on anything but ok or
refused.
"""

import json
import os
import select
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

from edgedigits.errors import EdgeDigitsError

KINDS = {"images": 1, "models": 2, "text": 3}
SECONDS_PER_MP = 1.0          # the time bound of a page: CPU seconds per megapixel read ...
MIN_SECONDS = 1.0             # ... and never less than this (small pages are read upscaled)
WALL_LIMIT = 60.0             # a case still running after this is a hang
BAD = ("slow", "crash", "hang", "uncaught")


def case_rng(seed: int, kind: str, i: int) -> np.random.Generator:
    return np.random.default_rng([seed, KINDS[kind], i])


def time_bound(mp: float) -> float:
    """The CPU seconds a page of `mp` megapixels may take."""
    return max(MIN_SECONDS, SECONDS_PER_MP * mp)


# --- images --------------------------------------------------------------------------------------

def _size(rng) -> tuple:
    r = rng.random()
    if r < 0.05:                                            # degenerate
        return tuple(int(v) for v in rng.integers(1, 12, 2))
    if r < 0.12:                                            # a strip
        long = int(rng.integers(200, 3000))
        return (int(rng.integers(1, 40)), long) if rng.random() < 0.5 else (long, int(rng.integers(1, 40)))
    mp = float(np.exp(rng.uniform(np.log(0.01), np.log(2.5 if r > 0.85 else 0.6))))
    aspect = float(np.exp(rng.uniform(-1.2, 1.2)))
    h = max(1, int(np.sqrt(mp * 1e6 / aspect)))
    return h, max(1, int(mp * 1e6 / h))


def _drawn(rng, h, w) -> np.ndarray:
    """Paper with dark digits, strokes and scribbles of random size."""
    import cv2

    img = np.full((h, w), int(rng.integers(150, 256)), np.uint8)
    for _ in range(int(rng.integers(0, 60))):
        color = int(rng.integers(0, 120))
        size = float(rng.uniform(0.3, 6))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        what = rng.integers(3)
        if what == 0:
            cv2.putText(img, str(int(rng.integers(0, 10 ** 6))), (x, y), int(rng.integers(0, 8)), size, color,
                        int(rng.integers(1, 6)))
        elif what == 1:
            cv2.line(img, (x, y), (int(rng.integers(0, w)), int(rng.integers(0, h))), color, int(rng.integers(1, 8)))
        else:
            cv2.circle(img, (x, y), int(rng.integers(1, max(2, min(h, w)))), color, int(rng.integers(1, 5)))
    return img


def synthetic_image(rng) -> tuple:
    """(kind, uint8 image) of random size and content."""
    import cv2

    h, w = _size(rng)
    kind = str(rng.choice(["uniform", "salt", "blur", "gauss", "flat", "gradient", "stripes", "checker",
                           "drawn", "drawn_noisy"]))
    if kind == "uniform":
        img = rng.integers(0, 256, (h, w), dtype=np.uint8)
    elif kind == "salt":
        img = np.where(rng.random((h, w)) < rng.uniform(0.001, 0.5), 0, 255).astype(np.uint8)
    elif kind == "blur":
        noise = rng.integers(0, 256, (h, w), dtype=np.uint8)
        img = cv2.normalize(cv2.GaussianBlur(noise, (0, 0), float(rng.uniform(1, 12))), None, 0, 255,
                            cv2.NORM_MINMAX)
    elif kind == "gauss":
        img = np.clip(rng.uniform(0, 255) + rng.normal(0, rng.uniform(1, 80), (h, w)), 0, 255).astype(np.uint8)
    elif kind == "flat":
        img = np.full((h, w), int(rng.integers(0, 256)), np.uint8)
    elif kind == "gradient":
        img = np.add.outer(np.linspace(0, rng.uniform(0, 255), h), np.linspace(0, rng.uniform(0, 255), w))
        img = np.clip(img, 0, 255).astype(np.uint8)
    elif kind == "stripes":
        period = int(rng.integers(2, 80))
        img = ((np.arange(w) // period) % 2 * 255).astype(np.uint8)[None].repeat(h, 0)
        if rng.random() < 0.5:
            img = np.ascontiguousarray(np.rot90(img)) if h == w else img
    elif kind == "checker":
        period = int(rng.integers(1, 60))
        img = (((np.arange(h)[:, None] // period) + (np.arange(w)[None] // period)) % 2 * 255).astype(np.uint8)
    else:
        img = _drawn(rng, h, w)
        if kind == "drawn_noisy":
            img = np.clip(img + rng.normal(0, rng.uniform(5, 60), img.shape), 0, 255).astype(np.uint8)
    channels = int(rng.choice([1, 1, 3, 3, 4]))
    if channels > 1:
        img = np.ascontiguousarray(np.repeat(img[..., None], channels, 2))
        if rng.random() < 0.3:                                  # colour casts
            img = (img * rng.uniform(0.3, 1.0, channels)).astype(np.uint8)
    return kind, img


def mutate(data: bytes, rng) -> bytes:
    """Flip bytes, cut short, splice a run, zero a run or patch a header-sized integer."""
    b = bytearray(data)
    if not b:
        return bytes(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8))
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(5))
        p = int(rng.integers(len(b)))
        if op == 0:
            for _ in range(int(rng.integers(1, 16))):
                b[int(rng.integers(len(b)))] = int(rng.integers(256))
        elif op == 1:
            b = b[:max(1, p)]
        elif op == 2:
            q = int(rng.integers(len(b)))
            b[p:p] = b[q:q + int(rng.integers(1, 256))]
        elif op == 3:
            b[p:p + int(rng.integers(1, 512))] = bytes(min(len(b) - p, 512))
        else:
            b[p:p + 4] = int(rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 100_000])).to_bytes(4, "big")
    return bytes(b)


def image_case(rng) -> tuple:
    """(label, kind of input, payload): an array for read_page, or file bytes for load_image."""
    kind, img = synthetic_image(rng)
    r = rng.random()
    if r < 0.6:
        return kind, "array", img
    if r < 0.65:                                             # not uint8 / odd shapes
        odd = rng.integers(4)
        bad = [img.astype(np.float32), img[..., None, None] if img.ndim == 2 else img[None],
               np.zeros((0, 5), np.uint8), img.astype(np.uint16) * 200][odd]
        return f"odd_array{odd}", "array", bad
    import cv2

    ext = str(rng.choice([".png", ".jpg", ".bmp", ".webp", ".tiff", ".gif"]))
    if ext == ".gif":
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(img if img.ndim == 2 else img[..., :3]).convert("P").save(buf, "GIF")
        data = buf.getvalue()
    else:
        ok, enc = cv2.imencode(ext, img if ext != ".jpg" or img.ndim == 2 or img.shape[2] == 3 else img[..., :3])
        data = enc.tobytes() if ok else b""
    if rng.random() < 0.7:
        data = mutate(data, rng)
    return f"{kind}{ext}", "file", data


def run_image(case, rec) -> dict:
    from .images import decode_image
    from .page import read_page

    label, how, payload = case
    t0 = time.process_time()
    image = decode_image(np.frombuffer(payload, np.uint8), what="fuzz") if how == "file" else payload
    result = read_page(image, rec)
    mp = image.shape[0] * image.shape[1] / 1e6
    return {"seconds": time.process_time() - t0, "mp": mp, "digits": len(result.digits),
            "noise": bool(result.noise)}


# --- models --------------------------------------------------------------------------------------

def model_sources() -> list:
    """(suffix, bytes, backends) of the shipped exports used as seeds for mutation."""
    from edgedigits.models import shipped

    from .recognizer import installed

    out = []
    for name, backends in (("model.onnx", ("onnxruntime", "opencv")), ("model_int8.onnx", ("onnxruntime",)),
                           ("model_int8.tflite", ("litert",)), ("model_float32.tflite", ("litert",))):
        path = shipped() / name
        usable = tuple(b for b in backends if installed(b))
        if path.exists() and usable:
            out.append((path.suffix, path.read_bytes(), usable))
    return out


def model_case(rng, sources) -> tuple:
    suffix, data, backends = sources[int(rng.integers(len(sources)))]
    backend = str(rng.choice(backends))
    return f"{suffix.lstrip('.')}/{backend}", mutate(data, rng), suffix, backend


def run_model(case, folder: Path) -> dict:
    from .recognizer import Recognizer

    label, data, suffix, backend = case
    path = folder / f"fuzz{suffix}"
    path.write_bytes(data)                          # no .sha256 beside it: every check runs
    rec = Recognizer(path, backend=backend)
    probs = rec.predict(np.zeros((3, 28, 28), np.float32))
    if probs.shape != (3, len(rec.labels)) or not np.isfinite(probs).all():
        raise AssertionError(f"predict gave {probs.shape}, finite={np.isfinite(probs).all()}")
    return {}


# --- text: labels.csv, metadata, predict inputs (in process, no native code at risk) -------------

def text_case(rng) -> tuple:
    r = int(rng.integers(3))
    if r == 0:
        rows = ["filename,lines"] if rng.random() < 0.8 else []
        for _ in range(int(rng.integers(0, 6))):
            name = "".join(chr(int(c)) for c in rng.integers(32, 0x3000, int(rng.integers(0, 8))))
            lines = "|".join(str(int(rng.integers(0, 10 ** 6))) for _ in range(int(rng.integers(0, 4))))
            rows.append(",".join([name, lines][: int(rng.integers(0, 3))] + [""] * int(rng.integers(0, 2))))
        data = "\n".join(rows).encode("utf-8", "surrogatepass")
        if rng.random() < 0.2:
            data = b"\xef\xbb\xbf" + data
        if rng.random() < 0.5:
            data = mutate(data, rng)
        return "labels.csv", data
    if r == 1:
        values = [7, "x", None, [], {}, [1, "a"], ["0"] * 11, {"kind": "logits", "none_threshold": 2},
                  {"kind": "probabilities"}, -1.5, True, "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace")]
        meta = {k: values[int(rng.integers(len(values)))] for k in rng.choice(["labels", "output", "name", "format",
                                                                                 "input"], int(rng.integers(0, 4)))}
        data = json.dumps(meta if rng.random() < 0.9 else list(meta)).encode()
        return "metadata", mutate(data, rng) if rng.random() < 0.5 else data
    shape = [int(v) for v in rng.integers(0, 30, int(rng.integers(1, 5)))]
    x = rng.normal(0.5, float(rng.uniform(0, 300)), shape).astype(rng.choice([np.float32, np.float64, np.int16]))
    if x.size and rng.random() < 0.3:
        x.flat[int(rng.integers(x.size))] = rng.choice([np.nan, np.inf, -np.inf]) if x.dtype.kind == "f" else 0
    return "predict", x


def run_text(case, rec, folder: Path) -> dict:
    from .evaluate import read_labels
    from .recognizer import _json_or_empty, validate_metadata

    what, payload = case
    if what == "labels.csv":
        (folder / "labels.csv").write_bytes(payload)
        read_labels(folder)
    elif what == "metadata":
        validate_metadata(_json_or_empty(payload.decode("utf-8", "replace")), "fuzz")
    else:
        rec.predict(payload)
    return {}


# --- running cases: a worker process, a parent that counts ---------------------------------------

def run_one(kind: str, seed: int, i: int, rec, folder: Path, sources) -> dict:
    """One case in this process: {"i", "label", "outcome", ...}."""
    rng = case_rng(seed, kind, i)
    if kind == "images":
        case = image_case(rng)
    elif kind == "models":
        case = model_case(rng, sources)
    else:
        case = text_case(rng)
    out = {"i": i, "label": case[0]}
    try:
        if kind == "images":
            out.update(run_image(case, rec))
            out["outcome"] = "slow" if out["seconds"] > time_bound(out["mp"]) else "ok"
        elif kind == "models":
            out.update(run_model(case, folder))
            out["outcome"] = "ok"
        else:
            out.update(run_text(case, rec, folder))
            out["outcome"] = "ok"
    except EdgeDigitsError as e:
        out.update(outcome="refused", message=str(e)[:200])
        if "\n" in str(e):
            out.update(outcome="uncaught", message="a refusal of more than one line: " + str(e)[:200])
    except Exception as e:   # noqa: BLE001 -- what the fuzzer looks for
        out.update(outcome="uncaught", message=f"{type(e).__name__}: {str(e)[:200]}",
                   where=traceback.format_exc().strip().splitlines()[-3][:200])
    return out


def worker(kind: str, seed: int, start: int, count: int, fd: int) -> None:
    """Run cases start..start+count-1, one JSON line each on file descriptor `fd` (not stdout: native
    libraries print there), a "start" line before each case, so the parent knows which case a
    crash belongs to."""
    import cv2

    from .recognizer import Recognizer

    cv2.setNumThreads(1)
    rec = Recognizer(threads=1)
    sources = model_sources() if kind == "models" else None
    with tempfile.TemporaryDirectory(prefix="edgedigits-fuzz-") as tmp, os.fdopen(fd, "w", buffering=1) as out:
        for i in range(start, start + count):
            print(json.dumps({"start": i}), file=out, flush=True)
            print(json.dumps(run_one(kind, seed, i, rec, Path(tmp), sources)), file=out, flush=True)


class _Lines:
    """Lines from a pipe, each waited for with a timeout (None: timed out; "": the writer is gone)."""

    def __init__(self, fd: int):
        self.fd, self.buf = fd, b""

    def next(self, timeout: float):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return ""
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def run(kind: str, n: int, seed: int, log=None) -> list:
    """Run n cases of `kind` in worker processes; returns one record per case."""
    records, i = [], 0
    while i < n:
        read_fd, write_fd = os.pipe()
        cmd = [sys.executable, "-m", "edgedigits.runtime.fuzz", kind, str(seed), str(i), str(n - i), str(write_fd)]
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_fd,),
                                 env={**os.environ, "OMP_NUM_THREADS": "1"})
        os.close(write_fd)
        lines, current = _Lines(read_fd), None
        try:
            while True:
                line = lines.next(WALL_LIMIT + (30 if current is None else 0))   # start-up may be slow
                if line is None:                                 # over the wall limit: a hang
                    child.kill()
                    at = current if current is not None else i
                    records.append({"i": at, "outcome": "hang"})
                    i = at + 1
                    break
                if line == "":                                   # the worker died
                    code = child.wait()
                    if current is not None:
                        records.append({"i": current, "outcome": "crash", "message": f"worker exit {code}"})
                        i = current + 1
                    elif code != 0:
                        raise EdgeDigitsError(f"the fuzz worker failed to start (exit {code})")
                    break
                record = json.loads(line)
                if "start" in record:
                    current = record["start"]
                    continue
                records.append(record)
                current, i = None, record["i"] + 1
                if log and len(records) % 100 == 0:
                    log(f"{kind}: {len(records)}/{n} {dict(Counter(r['outcome'] for r in records))}")
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            os.close(read_fd)
    return records


def summary(kind: str, records: list) -> dict:
    outcomes = Counter(r["outcome"] for r in records)
    by_label = {}
    for r in records:
        by_label.setdefault(r.get("label", "?"), Counter())[r["outcome"]] += 1
    out = {"cases": len(records), "outcomes": dict(outcomes),
           "by_label": {k: dict(v) for k, v in sorted(by_label.items())},
           "bad": [r for r in records if r["outcome"] in BAD]}
    timed = [r for r in records if "seconds" in r]
    if timed:
        big = [r for r in timed if r["mp"] >= 0.25]
        worst = max(timed, key=lambda r: r["seconds"])
        closest = max(timed, key=lambda r: r["seconds"] / time_bound(r["mp"]))
        per_mp = max(big, key=lambda r: r["seconds"] / r["mp"], default=None)
        out["time"] = {"max_seconds": round(worst["seconds"], 3), "at_mp": round(worst["mp"], 3),
                       "case": worst["i"],
                       "max_share_of_bound": round(closest["seconds"] / time_bound(closest["mp"]), 3),
                       "max_share_case": closest["i"],
                       "max_s_per_mp_from_0.25mp": round(per_mp["seconds"] / per_mp["mp"], 3) if per_mp else 0.0,
                       "max_s_per_mp_case": per_mp["i"] if per_mp else None,
                       "mean_seconds": round(float(np.mean([r["seconds"] for r in timed])), 4)}
    return out


def register(sub) -> None:
    p = sub.add_parser("fuzz", help="feed the runtime hostile images, models and text; count outcomes",
                       description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1000, metavar="N", help="image cases (default 1000)")
    p.add_argument("--models", type=int, default=100, metavar="N", help="mutated model files (default 100)")
    p.add_argument("--text", type=int, default=1000, metavar="N",
                   help="labels.csv, metadata and predict cases (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--replay", metavar="KIND:I", help="run one case again in this process, e.g. images:42")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write every record to OUT")
    p.set_defaults(func=cmd_fuzz)


def cmd_fuzz(args) -> int:
    if args.replay:
        kind, _, i = args.replay.partition(":")
        if kind not in KINDS or not i.isdigit():
            raise EdgeDigitsError(f"--replay takes KIND:I with KIND one of {', '.join(KINDS)}")
        import cv2

        from .recognizer import Recognizer

        cv2.setNumThreads(1)                         # as in a worker: one core, so times compare
        with tempfile.TemporaryDirectory() as tmp:
            record = run_one(kind, args.seed, int(i), Recognizer(threads=1), Path(tmp),
                             model_sources() if kind == "models" else None)
        print(json.dumps(record))
        return 0 if record["outcome"] not in BAD else 1
    for n in (args.images, args.models, args.text):
        if n < 0:
            raise EdgeDigitsError("counts must be >= 0")
    t0 = time.time()
    report, everything = {"seed": args.seed}, {}
    for kind, n in (("text", args.text), ("models", args.models), ("images", args.images)):
        if n:
            records = run(kind, n, args.seed, log=lambda m: print(m, file=sys.stderr, flush=True))
            everything[kind] = records
            report[kind] = summary(kind, records)
    report["seconds"] = round(time.time() - t0, 1)
    if args.json:
        args.json.write_text(json.dumps({"report": report, "records": everything}) + "\n")
    for kind in ("text", "models", "images"):
        if kind in report:
            s = report[kind]
            print(f"{kind:7} {s['cases']:6} cases  " + "  ".join(f"{k} {v}" for k, v in sorted(s["outcomes"].items())))
            if "time" in s:
                t = s["time"]
                print(f"        slowest {t['max_seconds']:.2f} s CPU (case {t['case']}, {t['at_mp']:.2f} MP); "
                      f"worst {t['max_s_per_mp_from_0.25mp']:.2f} s/MP from 0.25 MP (case {t['max_s_per_mp_case']}); "
                      f"mean {t['mean_seconds']:.3f} s")
                print(f"        closest to the bound ({SECONDS_PER_MP:g} s/MP, at least {MIN_SECONDS:g} s): "
                      f"{100 * t['max_share_of_bound']:.0f}% of it (case {t['max_share_case']})")
            for r in s["bad"][:10]:
                print(f"        {r['outcome']}: --replay {kind}:{r['i']} --seed {args.seed}  {r.get('label', '')} "
                      f"{r.get('message', '')}")
    print(f"seed {args.seed}, {report['seconds']:.0f} s")
    return 1 if any(report[k]["bad"] for k in KINDS if k in report) else 0


if __name__ == "__main__":      # the worker: python -m edgedigits.runtime.fuzz KIND SEED START COUNT
    worker(sys.argv[1], *map(int, sys.argv[2:6]))
