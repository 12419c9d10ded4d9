"""Subcommands of the trainer: train, evaluate, models, augment-preview, compare-none,
synth-pages."""

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from edgedigits.common import positive_int

from .names import (ACTIVATION_NAMES, AUG_NAMES, LOSS_NAMES, MODEL_NAMES, OPTIMIZER_NAMES, POOL_NAMES,
                    SCHEDULE_NAMES)


def add_data_dir(p) -> None:
    p.add_argument("--data-dir", help="folder with the four MNIST .gz files "
                   "(default: $EDGEDIGITS_DATA, else the user cache; missing files are downloaded)")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on MNIST",
                       description="Train a model on MNIST and write model.safetensors, model.json, "
                       "MODEL_CARD.md, history.json and curves.png into --out.")
    p.add_argument("--model", choices=MODEL_NAMES, default="cnn")
    p.add_argument("--activation", choices=ACTIVATION_NAMES, default="relu")
    p.add_argument("--pool", choices=POOL_NAMES, default="max",
                   help="between the cnn stages; gap: none, stride-2 convs, the global average only")
    p.add_argument("--loss", choices=LOSS_NAMES, help="ce (default), mse or huber on the softmax, "
                   "hinge (multi-class margin)")
    p.add_argument("--dropout", type=unit_float, help="dropout rate (default: the model's, cnn 0.1, mlp 0.2)")
    p.add_argument("--l1", type=non_negative_float, help="L1 penalty on the weights (default 0)")
    p.add_argument("--batchnorm", action=argparse.BooleanOptionalAction,
                   help="BatchNorm after each conv/linear (default: on in the cnns, off in the mlp)")
    p.add_argument("--hidden", type=hidden_sizes, metavar="N[,N]", help="mlp hidden layer sizes (default 128)")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--optimizer", choices=OPTIMIZER_NAMES)
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=SCHEDULE_NAMES)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--patience", type=positive_int, help="early-stopping patience in epochs")
    p.add_argument("--min-epochs", type=positive_int, help="no early stop before this epoch (default 20)")
    p.add_argument("--val-size", type=positive_int, help="validation digits split off the 60k (default 5000)")
    p.add_argument("--limit", type=positive_int, help="train on this many training digits only")
    p.add_argument("--seed", type=int)
    p.add_argument("--deterministic", action="store_true", help="deterministic algorithms only")
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch")
    p.add_argument("--no-augment", nargs="*", choices=AUG_NAMES + ("all",), metavar="AUG",
                   help=f"switch augmentations off: {', '.join(AUG_NAMES)} or all")
    p.add_argument("--negatives", type=positive_int, metavar="N",
                   help="add an 11th class, 'none', trained on N synthetic marks that are not handwritten "
                        "digits (printed digits and text, letters, signs, rules); needs fonts, see docs/training.md")
    p.add_argument("--init", metavar="DIR",
                   help="start from this checkpoint's weights (fine-tune; a 10-class head grows the 'none' row)")
    p.add_argument("--distill", type=float, metavar="W",
                   help="with --init: weight of holding the digits to the init model's outputs "
                        "(learning without forgetting; keeps its MNIST accuracy)")
    p.add_argument("--photo-marks", metavar="FILE",
                   help="also train on the labelled crops of real photos in FILE (`edgedigits harvest`)")
    p.add_argument("--photo-repeat", type=positive_int, metavar="N",
                   help="with --photo-marks: show each crop N times per epoch (default 10)")
    p.add_argument("--quick", action="store_true", help="the short recipe (about 5 minutes on 2 cores)")
    p.add_argument("--resume", action="store_true",
                   help="continue from --out/last.pt with the run's own recipe (its model.json)")
    p.add_argument("--force", action="store_true", help="train over a finished model in --out")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, mps)")
    p.add_argument("--out", type=Path, default=Path("runs/cnn"), help="run folder (default runs/cnn)")
    add_data_dir(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on the 10k MNIST test set",
                       description="Accuracy, per-class precision/recall/F1, confusion matrix PNG, "
                       "misclassified-digits PNG and training-curves PNG.")
    p.add_argument("--weights", type=Path, help="model.safetensors or its run folder (default: the shipped cnn)")
    p.add_argument("--out", type=Path, default=Path("runs/evaluate"), help="where the PNGs go")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--device", default="cpu")
    add_data_dir(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("models", help="list the models: parameters, MACs, shipped accuracy",
                       description="Parameter count and MACs of each model (for any activation and "
                       "pooling), with the test accuracy of the shipped checkpoint where there is one.")
    p.add_argument("--activation", choices=ACTIVATION_NAMES, default="relu")
    p.add_argument("--pool", choices=POOL_NAMES, default="max")
    p.add_argument("--markdown", action="store_true", help="print the README's table")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("augment-preview", help="write a PNG grid showing each augmentation")
    p.add_argument("--out", type=Path, default=Path("runs/augment.png"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-augment", nargs="*", choices=AUG_NAMES + ("all",), metavar="AUG")
    add_data_dir(p)
    p.set_defaults(func=cmd_augment_preview)

    p = sub.add_parser("compare-none", help="an 11th 'none' class against a second, binary model",
                       description="Measure the two ways to say 'not a digit' on the same held-out data: "
                                   "the 11-class model (--model) against the 10-class one (--digits) plus a "
                                   "binary cnn-tiny trained here (digit or not).")
    p.add_argument("--model", type=Path, help="the 11-class checkpoint (default: the shipped cnn)")
    p.add_argument("--digits", type=Path, help="the 10-class checkpoint (default: the shipped cnn-mnist)")
    p.add_argument("--negatives", type=positive_int, default=40000, help="marks to train the binary model on")
    p.add_argument("--epochs", type=positive_int, default=3, help="binary model epochs (default 3)")
    p.add_argument("--limit", type=positive_int, default=0, help="train the binary model on this many digits (and score on as many test digits)")
    p.add_argument("--photo-marks", type=Path, metavar="FILE",
                   help="also score on labelled crops of real photos (`edgedigits harvest`)")
    p.add_argument("--out", type=Path, default=Path("runs/none-head"), help="report folder")
    p.add_argument("--device", default="cpu")
    add_data_dir(p)
    p.set_defaults(func=cmd_compare_none)

    p = sub.add_parser("synth-pages", help="write synthetic photos of digits on paper (labels.csv for eval-paper)",
                       description="Synthetic phone photos of MNIST digits on ruled, squared, dotted and plain "
                                   "paper, with words, signs and print beside them, as PNGs with labels.csv "
                                   "(for `edgedigits eval-paper` and `edgedigits harvest`) and info.json "
                                   "(every mark's box).")
    p.add_argument("out", type=Path, metavar="DIR")
    p.add_argument("--pages", type=positive_int, default=20, help="how many pages (default 20)")
    p.add_argument("--seed", type=int, default=0, help="page i depends only on (seed, i) (default 0)")
    p.add_argument("--digits", choices=("test", "train"), default="test",
                   help="the MNIST digits written: test (to measure, the default) or train (pages to "
                        "harvest crops from and train on)")
    add_data_dir(p)
    p.set_defaults(func=cmd_synth_pages)


def unit_float(text: str) -> float:
    """argparse type: a rate in [0, 1)."""
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be below 1")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def hidden_sizes(text: str) -> list:
    """argparse type: '256' or '256,128' (also '256+128', the form `compare --vary` takes)."""
    return [positive_int(t) for t in text.replace("+", ",").split(",")]


def augment_config(off):
    from .augment import AugmentConfig

    cfg = AugmentConfig()
    for name in AUG_NAMES if off and "all" in off else off or ():
        setattr(cfg, name, False)
    return cfg


def cmd_train(args) -> int:
    from .train import QUICK, Recipe, fit

    recipe = Recipe(model=args.model, activation=args.activation, pool=args.pool,
                    augment=augment_config(args.no_augment).to_dict())
    if args.quick:
        for k, v in QUICK.items():
            setattr(recipe, k, v)
    for f in fields(Recipe):
        value = getattr(args, f.name, None)
        if value is not None and f.name not in ("model", "activation", "pool", "augment"):
            setattr(recipe, f.name, value)
    recipe.deterministic = args.deterministic
    if args.resume:                    # the run goes on as it was started
        from .rundir import resume_recipe

        recipe = resume_recipe(args.out, Recipe)
        recipe.threads = args.threads or recipe.threads
        print(f"resume: {recipe.model}, {recipe.epochs} epochs, the recipe in {args.out}'s model.json "
              "(recipe flags given now are not used)", file=sys.stderr)
    fit(recipe, args.data_dir, args.out, args.device, resume=args.resume, force=args.force)
    print(f"next: edgedigits evaluate --weights {args.out / 'model.safetensors'}")
    return 0


def cmd_synth_pages(args) -> int:
    from .synthpages import write_pages

    out = write_pages(args.out, args.pages, args.seed, args.data_dir, args.digits)
    print(f"{args.pages} pages ({args.digits} digits, seed {args.seed}) -> {out}")
    return 0


def cmd_compare_none(args) -> int:
    from edgedigits.models import shipped

    from .none_head import compare, table, write

    result = compare(args.model or shipped(), args.digits or shipped().parent / "cnn-mnist", args.data_dir,
                     args.negatives, args.epochs, args.photo_marks, device=args.device, limit=args.limit)
    write(args.out, result)
    print(table(result))
    print(f"report: {args.out / 'none_head.md'}")
    return 0


def default_weights() -> Path:
    from edgedigits.models import shipped

    return shipped() / "model.safetensors"


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate, format_report

    result = evaluate(args.weights or default_weights(), args.data_dir, args.out, args.device)
    if args.json:
        json.dump(result, sys.stdout)
        print()
    else:
        print(format_report(result))
    return 0


def shipped_accuracy(name: str):
    from edgedigits.models import shipped

    config = shipped(name) / "model.json"
    return json.loads(config.read_text()).get("test_accuracy") if config.exists() else None


def shipped_kwargs(name: str) -> dict:
    """The shipped model's own build arguments (the cnn has an 11th, "none", output)."""
    from edgedigits.models import shipped

    config = shipped(name) / "model.json"
    return json.loads(config.read_text()).get("model_kwargs", {}) if config.exists() else {}


def models_table(activation: str, pool: str, markdown: bool) -> str:
    from .models import MODELS, build_model, count_macs, count_params

    rows = []
    for name in MODELS:
        m = build_model(name, activation, pool, **shipped_kwargs(name))
        acc = shipped_accuracy(name) if (activation, pool) == ("relu", "max") else None
        acc_text = f"{100 * acc:.2f}%" if acc is not None else "-"
        card = f"[card](models/{name}/MODEL_CARD.md)" if acc is not None else "-"
        rows.append((name, f"{count_params(m):,}", f"{count_macs(m):,}", acc_text, card))
    if markdown:
        lines = ["| model | parameters | MACs | MNIST test accuracy (shipped) | card |",
                 "|---|---|---|---|---|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    lines = [f"{'model':10} {'params':>9} {'MACs':>11} {'shipped':>8}   ({activation}, {pool} pool)"]
    return "\n".join(lines + [f"{r[0]:10} {r[1]:>9} {r[2]:>11} {r[3]:>8}" for r in rows])


def cmd_models(args) -> int:
    print(models_table(args.activation, args.pool, args.markdown))
    return 0


def cmd_augment_preview(args) -> int:
    from . import data
    from .augment import preview_grid
    from .plots import plot_grid

    images = data.load_mnist(args.data_dir)[0]
    grid, names = preview_grid(images, augment_config(args.no_augment), args.seed)
    print(plot_grid(grid, names, args.out))
    return 0
