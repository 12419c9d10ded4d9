"""`edgedigits recognize | eval-paper | bench-runtime`: the runtime's commands.

Nothing heavy is imported here: OpenCV and the interpreter load when a command runs.
"""

import json
import sys
from pathlib import Path

from edgedigits.errors import EdgeDigitsError
from edgedigits.common import positive_int

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
BACKENDS = ("auto", "litert", "tflite_runtime", "tensorflow", "onnxruntime", "opencv")  # = recognizer.BACKENDS


def add_model_args(p) -> None:
    p.add_argument("--model", type=Path, metavar="M",
                   help="a .tflite or .onnx digit model (default: the shipped models/cnn/model_int8.tflite "
                        "when a TFLite interpreter is installed, else models/cnn/model.onnx)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="interpreter to run the model with (default: the lightest installed)")
    p.add_argument("--threads", type=positive_int, default=1, help="interpreter threads (default 1)")


def register(sub) -> None:
    p = sub.add_parser("recognize", help="read the handwritten digits on photos of paper",
                       description="Read every handwritten digit on photos of paper and print each "
                                   "file's lines (top to bottom, digits left to right).")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders of images")
    add_model_args(p)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per file: file, lines, digits (box, label, probability)")
    p.add_argument("--annotate", type=Path, metavar="DIR",
                   help="write each image with boxes, digits and probabilities drawn into DIR")
    p.add_argument("--no-page", action="store_true",
                   help="do not look for a sheet on a darker background to flatten")
    p.set_defaults(func=recognize)

    p = sub.add_parser("eval-paper", help="score page reading on a folder of labelled photos",
                       description="Read every image listed in DIR/labels.csv (columns filename, lines; "
                                   "lines split by |) and print per image and overall: digit accuracy "
                                   "(1 - edits / true digits), digits found vs true, exact lines.")
    p.add_argument("dir", type=Path, metavar="DIR")
    add_model_args(p)
    p.add_argument("--json", action="store_true",
                   help="print the figures as one JSON object (digit_accuracy, line_exact, images, ...)")
    p.add_argument("--annotate", type=Path, metavar="DIR", help="write the annotated images into DIR")
    p.add_argument("--min-accuracy", type=float, default=0.0, metavar="A",
                   help="exit 1 if the overall digit accuracy is below A (a CI gate)")
    p.set_defaults(func=eval_paper)

    p = sub.add_parser("bench-runtime", help="time each stage of page reading on one core",
                       description="Time the page-reading pipeline, stage by stage, on one thread: each "
                                   "image is scaled to SIZExSIZE pixels in area (keeping its aspect ratio).")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--model", type=Path, metavar="M", help="digit model (default: the shipped one)")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--size", type=positive_int, default=1000, help="scale to this many pixels squared (1000)")
    p.add_argument("--repeat", type=positive_int, default=20, help="timed runs per image (median reported)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=bench_runtime)


def image_files(paths: list):
    """Yield (path, error): image files as given, folders expanded (sorted, not recursive)."""
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                yield path, f"{path}: no image files in this folder"
            for p in found:
                yield p, None
        elif path.exists():
            yield path, None
        else:
            yield path, f"{path}: no such file or folder"


def unique_name(folder: Path, stem: str, used: set) -> Path:
    name, n = f"{stem}.png", 1
    while name in used:
        n += 1
        name = f"{stem}-{n}.png"
    used.add(name)
    return folder / name


def recognize(args) -> int:
    from edgedigits.runtime import Recognizer, annotate, load_image, read_page
    from edgedigits.runtime.evaluate import write_image

    rec = Recognizer(args.model, threads=args.threads, backend=args.backend)
    failed, used = 0, set()
    for path, error in image_files(args.paths):
        try:
            if error:
                raise EdgeDigitsError(error)
            image = load_image(path)
            result = read_page(image, rec, page=not args.no_page)
            if args.annotate:
                write_image(unique_name(args.annotate, path.stem, used), annotate(image, result))
        except Exception as e:       # one bad file never stops the batch, and is one line
            if isinstance(e, EdgeDigitsError):
                message = str(e)
            elif isinstance(e, OSError):
                message = f"{e.filename or path}: {e.strerror or e}"
            else:
                message = f"{path}: unexpected {type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
            print(f"edgedigits recognize: error: {message}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps({"file": str(path), **result.as_dict(), "model": rec.model_id,
                              "timings_ms": result.timings}), flush=True)
        else:
            print(path)
            for line in result.lines:
                print(f"  {line}")
            if not result.lines:
                print("  (no digits)")
            sys.stdout.flush()
    return 1 if failed else 0


def eval_paper(args) -> int:
    from edgedigits.runtime import Recognizer
    from edgedigits.runtime.evaluate import evaluate_folder, read_labels

    if not args.dir.is_dir():
        raise EdgeDigitsError(f"{args.dir}: no such folder")
    read_labels(args.dir)                       # a bad labels.csv fails before the model loads
    rec = Recognizer(args.model, threads=args.threads, backend=args.backend)
    report = evaluate_folder(args.dir, rec, annotate_dir=args.annotate)
    if args.json:
        print(json.dumps(report))
    else:
        width = max([24] + [len(e["file"]) for e in report["images"]])
        print(f"{'file':<{width}} {'found/true':>10} {'missed':>6} {'extra':>5} {'wrong':>5} {'digit acc':>9} "
              f"{'lines':>7} {'ms':>7}  read")
        for e in report["images"]:
            found = f"{e['digits_found']}/{e['digits_true']}"
            lines = f"{e['lines_exact']}/{e['lines_true']}"
            shown = e.get("error") or " ".join(e["read"])
            print(f"{e['file']:<{width}} {found:>10} {e['missed']:>6} {e['extra']:>5} {e['wrong']:>5} "
                  f"{e['digit_accuracy']:>9.1%} {lines:>7} {e['ms']:>7.1f}  {shown}")
        r = report
        found = f"{r['digits_found']}/{r['digits_true']}"
        print(f"{'overall':<{width}} {found:>10} {r['missed']:>6} {r['extra']:>5} {r['wrong']:>5} "
              f"{r['digit_accuracy']:>9.1%} {r['lines_exact']:>3}/{r['lines_true']:<3}"
              f"  lines exact {r['line_exact']:.1%}, images read {r['images_read']}/{len(r['images'])}"
              f"  ({r['model']})")
    errors = [e for e in report["images"] if "error" in e]
    for e in errors:
        print(f"edgedigits eval-paper: error: {e['error']}", file=sys.stderr)
    return 1 if errors or report["digit_accuracy"] < args.min_accuracy else 0


STAGES = ("prepare", "page", "ink", "lines", "classify", "total")


def bench_runtime(args) -> int:
    import time

    import cv2
    import numpy as np

    from edgedigits.runtime import Recognizer, load_image, read_page

    cv2.setNumThreads(1)
    rec = Recognizer(args.model, threads=1, backend=args.backend)
    rows = []
    for path in args.images:
        image = load_image(path)
        h, w = image.shape[:2]
        s = args.size / np.sqrt(h * w)
        image = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                           interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        for _ in range(2):                                       # warm-up
            result = read_page(image, rec)
        runs, cpu = [], []
        for _ in range(args.repeat):
            c0 = time.process_time()
            runs.append(read_page(image, rec).timings)
            cpu.append((time.process_time() - c0) * 1000)
        med = {k: float(np.median([r.get(k, 0.0) for r in runs])) for k in STAGES}
        rows.append({"file": str(path), "size": [image.shape[1], image.shape[0]],
                     "digits": len(result.digits), "ms": {k: round(v, 2) for k, v in med.items()},
                     "min_total_ms": round(min(r["total"] for r in runs), 2),
                     "cpu_ms": round(float(np.median(cpu)), 2)})
    if args.json:
        print(json.dumps({"model": rec.model_id, "backend": rec.backend, "threads": 1, "rows": rows}))
        return 0
    print(f"one thread, {rec.model_id} on {rec.backend}; wall-clock ms per stage (median of "
          f"{args.repeat} runs), fastest total, and the CPU time of a run (median)")
    print(f"{'image':<28} {'size':>9} {'digits':>6} " + " ".join(f"{k:>8}" for k in STAGES)
          + f" {'min':>7} {'cpu':>7}")
    for r in rows:
        size = "x".join(map(str, r["size"]))
        print(f"{Path(r['file']).name:<28} {size:>9} {r['digits']:>6} "
              + " ".join(f"{r['ms'][k]:>8.1f}" for k in STAGES)
              + f" {r['min_total_ms']:>7.1f} {r['cpu_ms']:>7.1f}")
    return 0
