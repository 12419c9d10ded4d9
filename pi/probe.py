"""What `make pi-check` runs twice, on this x86 machine and in the arm64 root, to compare:

    python pi/probe.py --prepare DATA --paper ../shared/data     # on the host, once
    python pi/probe.py OUT --data DATA

DATA holds mnist-test-1000.npy (the first 1,000 MNIST test digits, uint8 [1000, 28, 28]),
paper/, paper-hard/ (labelled photos) and paper.avi (a video of the paper photos). Writes
OUT/probe.json (readings, timings, versions) and OUT/logits.npz (one array per model file and
backend). Six processes run at once: eval-paper on each folder, the camera on the video and the
import check (each a real `edgedigits` command), and the classifier parity split in two; under
emulation that keeps both cores busy.
"""

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from edgedigits.models import shipped
from edgedigits.runtime import Recognizer
from edgedigits.runtime.recognizer import ONNX_BACKENDS, TFLITE_BACKENDS, installed

PACKAGES = ("edgedigits", "numpy", "opencv-python-headless", "ai-edge-litert", "onnxruntime", "tflite-runtime")
CAMERA_FRAMES = 36
PARITY_PARTS = 2          # parity in two processes: both cores busy under emulation
# Runs one real command in-process, then lists what it imported of the heavy frameworks.
IMPORT_CHECK = """
import sys
from edgedigits.cli import main
main(["recognize", sys.argv[1], "--json"])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "tensorflow", "keras", "jax"})
print("heavy modules:", ",".join(heavy) or "none")
"""


def cli(*args) -> list:
    return [sys.executable, "-m", "edgedigits.cli", *map(str, args)]


def versions() -> dict:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def pairs() -> list:
    """(model file, backend) for every shipped file and every backend installed here."""
    folder = shipped()
    return [(path, backend) for path in sorted(folder.glob("*.tflite")) + sorted(folder.glob("*.onnx"))
            for backend in (TFLITE_BACKENDS if path.suffix == ".tflite" else ONNX_BACKENDS)
            if backend != "tensorflow" and installed(backend)]


def parity(digits: np.ndarray, part: int, parts: int, out: Path) -> None:
    """Raw outputs (logits) of every `parts`-th pair from `part` on, into out/parity-PART.npz."""
    logits, seconds = {}, {}
    for path, backend in pairs()[part::parts]:
        t0 = time.perf_counter()
        recognizer = Recognizer(path, threads=1, backend=backend)
        logits[f"{path.name}/{backend}"] = recognizer._run(digits)      # all at once, as a page's crops
        seconds[f"{path.name}/{backend}"] = round(time.perf_counter() - t0, 2)
    np.savez(out / f"parity-{part}.npz", **logits)
    (out / f"parity-{part}.json").write_text(json.dumps(seconds))


def prepare(data: Path, paper: Path) -> None:
    """DATA for a probe: the first 1,000 MNIST test digits ($EDGEDIGITS_DATA), paper/ and
    paper-hard/ copied from `paper`, and paper.avi: twelve paper photos, three frames each, as a
    960x720 MJPG video (letterboxed on grey, as a camera sees a sheet on a desk)."""
    import shutil

    import cv2

    from edgedigits.train.data import load_mnist

    data.mkdir(parents=True, exist_ok=True)
    np.save(data / "mnist-test-1000.npy", load_mnist(allow_download=False)[2][:1000])
    for name in ("paper", "paper-hard"):
        shutil.copytree(paper / name, data / name, dirs_exist_ok=True)
    writer = cv2.VideoWriter(str(data / "paper.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (960, 720))
    for path in sorted((paper / "paper").glob("*.png"))[:12]:
        image = cv2.imread(str(path))
        scale = min(960 / image.shape[1], 720 / image.shape[0])
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame = np.full((720, 960, 3), 90, np.uint8)
        y, x = (720 - small.shape[0]) // 2, (960 - small.shape[1]) // 2
        frame[y:y + small.shape[0], x:x + small.shape[1]] = small
        for _ in range(3):
            writer.write(frame)
    writer.release()


def resize_primitive(photo: Path) -> dict:
    """OpenCV's INTER_AREA resize at a fractional factor (what page reading and the 20x20 digit fit
    use), in uint8 and float32, on one photo: the platform's own rounding shows here first."""
    import cv2

    gray = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
    return {f"resize_area_{image.dtype}": cv2.resize(image, None, fx=0.71, fy=0.71, interpolation=cv2.INTER_AREA)
            for image in (gray, gray.astype(np.float32) / np.float32(255))}


def camera_readings(stdout: str) -> list:
    """The camera's printed readings without their timestamps: 'frame 12: 123 | 456'."""
    return [re.sub(r" \([0-9.]+s\)", "", line) for line in stdout.splitlines() if line.startswith("frame ")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--prepare", type=Path, metavar="DATA", help="write DATA for a probe, and stop")
    parser.add_argument("--paper", type=Path, default=Path("../shared/data"), help="holds paper/, paper-hard/")
    parser.add_argument("--parity", type=int, metavar="PART", help="(internal) run one part of the parity")
    args = parser.parse_args()
    if args.prepare:
        return prepare(args.prepare, args.paper)
    if not args.out or not args.data:
        parser.error("give OUT and --data (or --prepare DATA)")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.parity is not None:
        digits = np.load(args.data / "mnist-test-1000.npy").astype(np.float32) / 255.0
        return parity(digits, args.parity, PARITY_PARTS, args.out)
    photo = sorted((args.data / "paper").glob("*.png"))[0]
    jobs = {
        "paper": cli("eval-paper", args.data / "paper", "--json"),
        "paper-hard": cli("eval-paper", args.data / "paper-hard", "--json"),
        "camera": cli("camera", "--source", args.data / "paper.avi", "--view", "none", "--max-frames",
                      CAMERA_FRAMES, "--samples", args.out / "samples"),
        "imports": [sys.executable, "-c", IMPORT_CHECK, str(photo)],
        **{f"parity-{k}": [sys.executable, __file__, args.out, "--data", args.data, "--parity", str(k)]
           for k in range(PARITY_PARTS)},
    }
    t0 = time.perf_counter()
    running = {name: subprocess.Popen(list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for name, cmd in jobs.items()}
    result = {"machine": platform.machine(), "python": platform.python_version(), "versions": versions(),
              "parity_seconds": {}, "jobs": {}}
    logits = {}
    for name, proc in running.items():
        out, err = proc.communicate()
        result["jobs"][name] = {"rc": proc.returncode, "stderr": err.strip().splitlines()[-3:],
                                "seconds": round(time.perf_counter() - t0, 1)}
        if name.startswith("paper") and proc.returncode == 0:
            report = json.loads(out)
            result["jobs"][name].update(model=report["model"], digit_accuracy=report["digit_accuracy"],
                                        read={e["file"]: e.get("read", e.get("error")) for e in report["images"]},
                                        ms_per_image=round(float(np.mean([e["ms"] for e in report["images"]])), 1))
        elif name == "camera":
            result["jobs"][name].update(readings=camera_readings(out), summary=out.strip().splitlines()[-1:])
        elif name == "imports":
            result["jobs"][name]["heavy"] = next((l.split(": ", 1)[1] for l in out.splitlines()
                                                  if l.startswith("heavy modules:")), None)
        elif name.startswith("parity") and proc.returncode == 0:
            logits.update(np.load(args.out / f"{name}.npz"))
            result["parity_seconds"].update(json.loads((args.out / f"{name}.json").read_text()))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    np.savez(args.out / "primitives.npz", **resize_primitive(photo))
    np.savez(args.out / "logits.npz", **logits)
    (args.out / "probe.json").write_text(json.dumps(result, indent=1))
    print(f"probe ({result['machine']}): {len(logits)} model/backend pairs, {result['seconds']} s")


if __name__ == "__main__":
    main()
