"""Subcommands of the exporter: export, benchmark, formats. Heavy imports happen inside handlers."""

import argparse
import json
import sys
from pathlib import Path

from edgedigits.common import positive_int
from edgedigits.train.cli import add_data_dir

from . import formats


def weights_file(path) -> Path:
    """--weights: a .safetensors file or its folder; default the shipped model."""
    from edgedigits.models import shipped

    path = Path(path) if path else shipped() / "model.safetensors"
    return path / "model.safetensors" if path.is_dir() else path


def accuracy(text: str) -> float:
    """--min-accuracy as 0.99 or 99 (percent)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    value = value / 100 if value > 1 else value
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a fraction (0.99) or a percentage (99)")
    return value


def register(sub) -> None:
    names = ", ".join(formats.EXPORTABLE)
    p = sub.add_parser("export", help="export a checkpoint to ONNX and TFLite, float32 and int8",
                       description="Convert a checkpoint to the formats of the table (see `edgedigits "
                       "formats`); each file is measured on the 10k MNIST test digits, checked, labelled "
                       "with its metadata and only then moved into --out, with labels.txt beside it.")
    p.add_argument("--weights", help="model.safetensors or its folder (default: the shipped cnn)")
    p.add_argument("--format", "--formats", dest="format", metavar="F[,F...]",
                   help=f"formats or aliases, comma-separated (default: all): {names}")
    p.add_argument("--int8", action="store_true", help="the int8 variant of each chosen format")
    p.add_argument("--out", type=Path, help="output folder (default: the weights' folder)")
    add_data_dir(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("benchmark", help="every export in every runtime: parity, size, speed",
                       description="Run every exported file through every runtime that loads it (PyTorch, "
                       "ONNX Runtime, OpenCV dnn, LiteRT) on the 10k MNIST test digits and compare with the "
                       "PyTorch checkpoint. Writes benchmark.md and benchmark.json into --out (benchmark-<formats>.* "
                       "for a run over some formats or one --model file).")
    p.add_argument("--weights", help="the reference checkpoint (default: the shipped cnn)")
    p.add_argument("--formats", "--format", dest="formats", metavar="F[,F...]",
                   help="formats to measure, comma-separated (default: all)")
    p.add_argument("--model", type=Path, help="benchmark this one .onnx/.tflite file instead")
    p.add_argument("--out", type=Path, help="folder holding the exports; the reports go there too "
                   "(default: the weights' folder; with --model, reports are written only when given)")
    p.add_argument("--threads", type=positive_int, default=1, help="threads per runtime (default 1)")
    p.add_argument("--runs", type=positive_int, default=300, help="batch-1 calls timed per row (default 300)")
    p.add_argument("--min-accuracy", type=accuracy, metavar="ACC",
                   help="exit non-zero if any row is below this accuracy (0.99 or 99)")
    p.add_argument("--json", action="store_true", help="print the report (with its rows) as JSON on stdout")
    add_data_dir(p)
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("formats", help="list the export formats", description=formats.__doc__.splitlines()[0])
    p.set_defaults(func=cmd_formats)


def cmd_export(args) -> int:
    chosen = formats.resolve(args.format, int8=args.int8)  # an unknown name fails before any import
    from .exporter import export

    weights = weights_file(args.weights)
    out = args.out or weights.parent
    written = export(weights, chosen, out, args.data_dir)
    out = formats.shown(out)
    print(f"\nwrote {len(written)} file(s) and {formats.LABELS_FILE} into {out}")
    example = next((p for p in written if p.name == "model_int8.tflite"), written[-1])
    print(f"recognize: edgedigits recognize IMAGE --model {formats.shown(example)}")
    bench = f"edgedigits benchmark --out {out}" + (f" --weights {args.weights}" if args.weights else "")
    print(f"benchmark: {bench}")
    print(f"one file:  edgedigits benchmark --model {formats.shown(example)}")
    return 0


def cmd_benchmark(args) -> int:
    if args.formats:
        formats.resolve(args.formats)  # fail fast on a typo
    from .benchmark import benchmark, failures, report_stem, to_markdown, write_reports

    weights = weights_file(args.weights)
    folder = args.out or weights.parent
    report = benchmark(weights, folder, args.formats, args.data_dir, model_file=args.model,
                       threads=args.threads, runs=args.runs)
    report["command"] = "edgedigits " + " ".join(sys.argv[1:]) if Path(sys.argv[0]).name == "edgedigits" \
        else "edgedigits benchmark"
    if args.model is None or args.out:
        for path in write_reports(report, folder, report_stem(args.formats, args.model)):
            print(f"wrote {path}", file=sys.stderr)
    print(json.dumps(report, indent=2) if args.json else to_markdown(report))
    bad = failures(report, args.min_accuracy)
    if bad:
        print(f"edgedigits benchmark: failed: {'; '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def cmd_formats(args) -> int:
    print(formats.markdown_table())
    return 0
