"""`edgedigits recognize | eval-paper | bench-runtime`: the runtime's commands.

Nothing heavy is imported here: OpenCV and the interpreter load when a command runs.
"""

import json
import sys
from pathlib import Path

from edgedigits.errors import EdgeDigitsError
from edgedigits.common import display_path, positive_int
from edgedigits.runtime.recognizer import BACKENDS      # numpy and the standard library only

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}


def add_model_args(p) -> None:
    p.add_argument("--model", type=Path, metavar="M",
                   help="a .tflite or .onnx digit model (default: the shipped models/cnn/model_int8.tflite "
                        "when a TFLite interpreter is installed, else models/cnn/model.onnx)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="interpreter to run the model with (default: the lightest installed)")
    p.add_argument("--threads", type=positive_int, default=1, help="interpreter threads (default 1)")
    add_max_pixels(p)


def add_max_pixels(p) -> None:
    p.add_argument("--max-pixels", type=positive_int, metavar="N",
                   help="refuse images larger than N pixels by their header, before decoding "
                        "(default 100000000; decompression bombs)")


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
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="read files in N processes, output kept in input order (default: every core "
                        "this process may use; 1 reads in this process)")
    p.add_argument("--jsonl", type=Path, metavar="OUT",
                   help="write one JSON line per file to OUT as it is read (in input order; a failed "
                        "file's line has \"error\"); stdout then stays quiet unless --json is given")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="OUT exists from a stopped run: skip the files it holds, append the rest")
    again.add_argument("--force", action="store_true", help="start OUT (or the --parquet DIR) again")
    p.add_argument("--progress", action="store_true",
                   help="show a progress line on stderr even when it is not a terminal")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="read on Ray Data actors: 'local' starts a local Ray, anything else joins "
                        "that cluster ('auto', 'ray://head:10001'); needs edgedigits[scale]")
    p.add_argument("--parquet", type=str, metavar="DIR",
                   help="with --ray: write the results as Parquet files into DIR")
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

    p = sub.add_parser("harvest", help="label the marks of labelled photos as training crops",
                       description="Read every candidate mark on the photos of DIR/labels.csv as a digit, "
                                   "align the reading with the true lines and save each mark's crop with "
                                   "its label (the true digit, or 'none' for a mark the alignment leaves "
                                   "over) for `edgedigits train --photo-marks`.")
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="folders with labels.csv")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the .npz to write")
    add_model_args(p)
    p.add_argument("--only", nargs="+", default=(), metavar="NAME", help="these photos only")
    p.add_argument("--skip", nargs="+", default=(), metavar="NAME",
                   help="leave these photos out (to measure on them)")
    p.add_argument("--none-only", action="store_true",
                   help="keep only the marks that are not digits (pages of MNIST digits: their "
                        "letters, words, signs and print are what the model lacks)")
    p.set_defaults(func=harvest_marks)

    p = sub.add_parser("bench-runtime", help="time each stage of page reading on one core",
                       description="Time the page-reading pipeline, stage by stage, on one thread: each "
                                   "image is scaled to SIZExSIZE pixels in area (keeping its aspect ratio).")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--model", type=Path, metavar="M", help="digit model (default: the shipped one)")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    add_max_pixels(p)
    p.add_argument("--size", type=positive_int, default=1000, help="scale to this many pixels squared (1000)")
    p.add_argument("--repeat", type=positive_int, default=20, help="timed runs per image (median reported)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=bench_runtime)

    p = sub.add_parser("bench-archive", help="time reading many pages on 1 and on 2 worker processes",
                       description="Make PAGES JPEG pages (0.3-1 MP crops, scales and flips of the given "
                                   "photos) in a temporary folder, read them all with `recognize --jsonl` "
                                   "on each number of workers, and print pages/s and the speed-up.")
    p.add_argument("sources", nargs="+", type=Path, metavar="PATH", help="photos, or folders of photos")
    p.add_argument("--pages", type=positive_int, default=2000, help="pages to make and read (2000)")
    p.add_argument("--workers", type=positive_int, nargs="+", default=[1, 2], metavar="N",
                   help="numbers of worker processes to time, the first is the baseline (1 2)")
    p.add_argument("--model", type=Path, metavar="M", help="digit model (default: the shipped one)")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=bench_archive)


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


def printable(record: dict) -> dict:
    """A record whose file name (and error) can be printed and JSON-encoded: bytes of a name that
    are not UTF-8 shown as \\xNN (never a lone surrogate, never an error at print)."""
    out = {**record, "file": display_path(record["file"])}
    if "error" in out:
        out["error"] = display_path(out["error"])
    return out


def unique_name(folder: Path, stem: str, used: set) -> Path:
    name, n = f"{stem}.png", 1
    while name in used:
        n += 1
        name = f"{stem}-{n}.png"
    used.add(name)
    return folder / name


def recognize(args) -> int:
    import os

    from edgedigits.runtime import Recognizer
    from edgedigits.runtime import archive

    if (args.resume or args.force) and not (args.jsonl or args.parquet):
        raise EdgeDigitsError("--resume and --force go with --jsonl OUT (or --parquet DIR)")
    if args.parquet and not args.ray:
        raise EdgeDigitsError("--parquet needs --ray (without Ray, write --jsonl)")
    if args.parquet and (args.jsonl or args.resume):
        raise EdgeDigitsError("--parquet writes the whole run at once: no --jsonl or --resume with it")
    if args.ray:
        import logging

        archive.import_ray()                                 # one line on how to install it, now
        logging.getLogger("ray.data").setLevel(logging.ERROR)   # its INFO lines would bury ours
    replace = args.parquet and "://" not in args.parquet and os.path.isdir(args.parquet) \
        and any(Path(args.parquet).iterdir())
    if replace and not args.force:
        raise EdgeDigitsError(f"{args.parquet} is not empty: add --force to replace its .parquet files")

    rec = Recognizer(args.model, threads=args.threads, backend=args.backend)   # the model is checked here
    if replace:
        for old in Path(args.parquet).glob("*.parquet"):
            old.unlink()
    out = archive.JsonlWriter(args.jsonl, resume=args.resume, force=args.force) if args.jsonl else None
    to_file = bool(args.jsonl or args.parquet)
    started_ray, progress = False, None
    failed = earlier = 0
    try:
        jobs = archive.plan(args.paths, args.annotate)
        done = out.done if out else {}
        todo = [j for j in jobs if display_path(j[0]) not in done]
        earlier = sum(1 for j in jobs if done.get(display_path(j[0])))         # failed in the run being resumed
        progress = archive.Progress(len(todo), enabled=args.progress or sys.stderr.isatty())
        if args.ray:
            started_ray = archive.ray_connect(args.ray)
            ds = archive.ray_read_jobs(todo, workers=args.workers, recognizer=rec, page=not args.no_page,
                                       progress_bars=bool(args.parquet) and progress.enabled) if todo else None
            if args.parquet:
                if ds is not None:
                    ds.write_parquet(args.parquet)
                    for file, error in archive.parquet_errors(args.parquet):
                        print(f"edgedigits recognize: error: {error}", file=sys.stderr)
                        failed += 1
                print(f"edgedigits recognize: {len(todo)} files read into {args.parquet}, {failed} failed",
                      file=sys.stderr)
                return 1 if failed else 0
            records = archive.ray_records(ds) if ds is not None else iter(())
        else:
            records = archive.read_jobs(todo, workers=args.workers, recognizer=rec, page=not args.no_page)
        for record in records:
            record = printable(record)
            if "error" in record:
                failed += 1
                progress.print(f"edgedigits recognize: error: {record['error']}")
            if out:
                out.write(record)
            if "error" not in record and (args.json or not to_file):
                progress.clear()
                if args.json:
                    print(json.dumps(record), flush=True)
                else:
                    print(record["file"])
                    for line in record["lines"]:
                        print(f"  {line}")
                    if not record["lines"]:
                        print("  (no digits)")
                    sys.stdout.flush()
            progress.update()
    finally:
        if progress:
            progress.close()
        if out:
            out.close()
        if started_ray:
            import ray

            ray.shutdown()
    if out:
        before = f", {len(jobs) - len(todo)} already there ({earlier} of them failed)" if out.done else ""
        print(f"edgedigits recognize: {len(todo)} files read into {args.jsonl}, {failed} failed{before}",
              file=sys.stderr)
    return 1 if failed or earlier else 0


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


STAGES = ("prepare", "page", "measure", "ink", "lines", "classify", "total")


def harvest_marks(args) -> int:
    from edgedigits.runtime import Recognizer
    from edgedigits.runtime.evaluate import read_labels
    import numpy as np

    from edgedigits.runtime.harvest import NONE, harvest, save

    names = set()
    for folder in args.dirs:
        if not folder.is_dir():
            raise EdgeDigitsError(f"{folder}: no such folder")
        names |= {name for name, _ in read_labels(folder)}
    unknown = sorted(set(args.only) - names) + sorted(set(args.skip) - names)
    if unknown:
        raise EdgeDigitsError(f"no labels.csv of {', '.join(map(str, args.dirs))} has {', '.join(unknown)}")
    rec = Recognizer(args.model, threads=args.threads, backend=args.backend)
    parts = [harvest(folder, rec, only=set(args.only), skip=set(args.skip)) for folder in args.dirs]
    marks = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    if args.none_only:
        marks = {key: value[marks["labels"] == NONE] for key, value in marks.items()}
        if not len(marks["labels"]):
            raise EdgeDigitsError("no mark of these photos is 'none': nothing to write")
    save(args.out, marks)
    labels = marks["labels"]
    print(f"{args.out}: {len(labels)} marks from {len(set(marks['files']))} photos: "
          f"{int((labels < 10).sum())} digits, {int((labels == 10).sum())} none")
    return 0


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


def bench_archive(args) -> int:
    import tempfile
    import time

    from edgedigits.runtime import archive

    sources = []
    for path, error in image_files(args.sources):
        if error:
            raise EdgeDigitsError(error)
        sources.append(path)
    with tempfile.TemporaryDirectory(prefix="edgedigits-pages-") as tmp:
        t0 = time.perf_counter()
        pages = archive.make_pages(sources, tmp, args.pages)
        made = time.perf_counter() - t0
        report = archive.bench(pages, args.workers, model=args.model, backend=args.backend)
    report["make_pages_s"] = round(made, 2)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['pages']} pages (0.3-1 MP JPEG from {len(sources)} photos, made in {made:.1f} s), "
          f"{report['model']} on {report['backend']}, {report['cores']} cores available")
    print(f"{'workers':>7} {'seconds':>8} {'pages/s':>8} {'per worker':>10} {'speed-up':>8} {'1st page s':>10} "
          f"{'CPU ms/page':>11} {'cores used':>10} {'load avg':>8}  same lines")
    def show(v, fmt):
        return "-" if v is None else format(v, fmt)

    for r in report["rows"]:
        print(f"{r['workers']:>7} {r['seconds']:>8.2f} {r['pages_per_s']:>8.1f} {r['pages_per_s_per_worker']:>10.1f} "
              f"{r['speedup']:>7.2f}x {r['first_page_s']:>10.2f} {show(r['cpu_ms_per_page'], '.1f'):>11} "
              f"{show(r['cores_used'], '.2f'):>10} {show(r['load_before'], '.2f'):>8}  "
              f"{'yes' if r['same_lines'] else 'NO'}")
    print("cores used = CPU seconds / wall seconds; below the number of workers when other work had the "
          "cores too (load avg: the 1-minute load before the run)")
    return 0
