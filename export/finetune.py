"""`edgedigits finetune`: keep a model current with its users' handwriting.

The camera demo saves the digits a user accepted or corrected (docs/camera.md, "Samples").
This command fine-tunes a checkpoint on them without letting it forget MNIST:

1. read the samples folder's index; hold back a seeded share of the samples for evaluation
   (chosen by a hash of each image, so it stays held back in later runs);
2. each epoch, train on ``--mnist`` fresh MNIST training digits mixed with the user's
   training samples repeated so that they make up ``--user-share`` of what the model sees
   (oversampling: a few hundred samples would otherwise drown in MNIST), with the checkpoint's
   own augmentation recipe, a one-cycle learning rate from a low peak, BatchNorm statistics
   frozen, and the starting model's outputs on the MNIST digits as a second target
   (distillation: "learning without forgetting");
3. evaluate the starting and the fine-tuned model on the 10k MNIST test digits and on the
   held-back samples; refuse to ship (write nothing, exit non-zero) if MNIST test accuracy
   fell by more than ``--max-drop`` points;
4. save the checkpoint and re-export it (edgedigits.export.exporter.export) into a NEW folder,
   built under a temporary name and renamed into place when complete. The user's current
   model is never touched.

This module is the command: its options, the checks and the re-export. The samples are read by
the format's owner (runtime/samples.py, which the camera demo writes with); the training loop is
train/finetune.py, on the step `train.train_step` that training runs too.
"""

import argparse
import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from edgedigits.errors import EdgeDigitsError
from edgedigits.common import positive_int, sha256

MIN_SAMPLES = 10


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune a model on samples saved by the camera demo, then re-export it",
        description="Fine-tune a checkpoint on MNIST mixed with your saved samples (oversampled), "
        "evaluate it on MNIST test and on held-back samples, refuse it if it lost more than "
        "--max-drop points on MNIST, and re-export it into a new folder.")
    p.add_argument("--samples", type=Path, required=True,
                   help="samples folder (with index.jsonl), or the .zip the web app downloads")
    p.add_argument("--weights", type=Path, help="starting checkpoint: model.safetensors or its folder "
                   "(default: the shipped cnn)")
    p.add_argument("--out", type=Path, help="new output folder (default runs/finetune-<UTC time>); "
                   "must not exist")
    p.add_argument("--epochs", type=positive_int, default=3, help="default 3")
    p.add_argument("--mnist", type=positive_int, default=10000, metavar="N",
                   help="MNIST training digits replayed per epoch (default 10000)")
    p.add_argument("--user-share", type=fraction, default=0.25, metavar="F",
                   help="share of each epoch made of your samples, by repetition (default 0.25)")
    p.add_argument("--holdout", type=fraction, default=0.2, metavar="F",
                   help="share of your samples held back for evaluation (default 0.2)")
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (default 3e-4)")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--distill", type=float, default=5.0, metavar="W",
                   help="weight of the starting model's outputs on the MNIST digits "
                   "(learning without forgetting; 0: hard labels only; default 5)")
    p.add_argument("--max-drop", type=float, default=0.1, metavar="POINTS",
                   help="largest MNIST test accuracy loss accepted, in points (default 0.1)")
    p.add_argument("--formats", nargs="+", metavar="FORMAT",
                   help="export formats (default: every format of the export table, as in a shipped model folder)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", help="folder with the four MNIST .gz files (default: $EDGEDIGITS_DATA, "
                   "else the user cache; missing files are downloaded)")
    p.set_defaults(func=cmd_finetune)


# ---------------------------------------------------------------------------- samples

def read_samples(root: Path):
    """(images uint8 [N, 28, 28], labels int64 [N], records) from a samples folder, read by the
    format's owner (`edgedigits.runtime.samples.read_samples`); fewer than MIN_SAMPLES is an error."""
    from edgedigits.runtime.samples import read_samples as read

    images, labels, records = read(root)
    if len(images) < MIN_SAMPLES:
        raise EdgeDigitsError(f"{root}: {len(images)} usable sample(s); fine-tuning needs at least "
                              f"{MIN_SAMPLES} (and a few hundred to help)")
    return images, labels, records


def split_holdout(images, share: float, seed: int):
    """(train indices, held-back indices) of these uint8 images, both non-empty.

    An image is held back when a seeded hash of its pixels falls below `share`. The choice does
    not depend on the other samples: as a user saves more and fine-tunes again (same seed), an
    image once held back is never trained on, and copies of one image (the same still frame
    saved twice) always land on the same side. So the before/after comparison stays honest.
    """
    import numpy as np

    u = np.array([int.from_bytes(hashlib.sha256(seed.to_bytes(8, "big", signed=True) + im.tobytes())
                                 .digest()[:8], "big") / 2 ** 64 for im in images])
    held = u < share
    if held.all() or not held.any():          # tiny sets: keep both sides non-empty
        held = np.zeros(len(u), bool)
        held[np.argsort(u)[:max(1, min(len(u) - 1, round(len(u) * share)))]] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


# ---------------------------------------------------------------------------- checks

def correct(model, images, labels, device) -> int:
    """Number of uint8 [N, 28, 28] images the model reads right (batched, no grad)."""
    import numpy as np
    import torch

    from edgedigits.train.train import predict_logits, to_tensor

    pred = predict_logits(model, to_tensor(images), device).argmax(1)
    return int((pred == torch.from_numpy(np.array(labels))).sum())


# ---------------------------------------------------------------------------- command

def pct(n: int, total: int) -> str:
    return f"{100 * n / total:.2f}% ({n}/{total})"


def cmd_finetune(args) -> int:
    import torch

    from edgedigits.export.exporter import check_modules, export
    from edgedigits.export.formats import resolve
    from edgedigits.models import shipped
    from edgedigits.train import data
    from edgedigits.train.checkpoint import load_checkpoint, resolve_weights, save_checkpoint
    from edgedigits.train.finetune import FinetuneSettings, finetune

    weights = resolve_weights(args.weights or shipped())
    out = args.out or Path("runs") / f"finetune-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    if out.exists():
        raise EdgeDigitsError(f"{out} already exists; fine-tuning writes a new folder, choose another --out")
    if out.resolve() == weights.parent.resolve():
        raise EdgeDigitsError(f"--out {out} is the starting model's folder; choose a new folder")
    formats = [f for f in resolve(args.formats) if not f.reference]
    check_modules(formats)          # fail now, not after the training
    if args.threads:
        torch.set_num_threads(args.threads)

    user_x, user_y, records = read_samples(args.samples)
    train_idx, hold_idx = split_holdout(user_x, args.holdout, args.seed)
    model, config = load_checkpoint(weights, args.device)
    mnist_x, mnist_y, test_x, test_y = data.load_mnist(args.data_dir)
    print(f"samples: {len(user_x)} in {args.samples} -> {len(train_idx)} for training, "
          f"{len(hold_idx)} held back (seed {args.seed}); starting from {weights}")

    hold_x, hold_y = user_x[hold_idx], user_y[hold_idx]
    before = {"mnist": correct(model, test_x, test_y, args.device),
              "held": correct(model, hold_x, hold_y, args.device)}
    settings = FinetuneSettings(epochs=args.epochs, mnist=args.mnist, user_share=args.user_share, lr=args.lr,
                                batch_size=args.batch_size, distill=args.distill, seed=args.seed,
                                device=args.device)
    steps = finetune(model, config, mnist_x, mnist_y, user_x[train_idx], user_y[train_idx], settings)
    after = {"mnist": correct(model, test_x, test_y, args.device),
             "held": correct(model, hold_x, hold_y, args.device)}
    n_test, n_hold = len(test_y), len(hold_y)
    print(f"MNIST test:         {pct(before['mnist'], n_test)} -> {pct(after['mnist'], n_test)}")
    print(f"held-back samples:  {pct(before['held'], n_hold)} -> {pct(after['held'], n_hold)}")
    drop = 100 * (before["mnist"] - after["mnist"]) / n_test
    if drop > args.max_drop + 1e-9:
        raise EdgeDigitsError(
            f"refusing to ship: MNIST test accuracy fell {drop:.2f} points (limit {args.max_drop}); "
            f"nothing was written; try fewer --epochs, a lower --lr or a smaller --user-share")
    if after["held"] <= before["held"]:
        print("warning: the held-back samples are not read better than before; "
              "save more samples (corrections especially) before shipping this model")

    report = {
        "weights": str(weights), "weights_sha256": sha256(weights), "samples": str(args.samples),
        "n_samples": len(user_x), "n_train": len(train_idx), "n_holdout": n_hold,
        "holdout_ids": [records[i].get("id") for i in hold_idx],
        "epochs": args.epochs, "steps": steps, "mnist_per_epoch": args.mnist,
        "user_share": args.user_share, "lr": args.lr, "batch_size": args.batch_size,
        "distill": args.distill, "seed": args.seed,
        "mnist_test": {"before": before["mnist"] / n_test, "after": after["mnist"] / n_test, "n": n_test},
        "holdout": {"before": before["held"] / n_hold, "after": after["held"] / n_hold, "n": n_hold},
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    config = {**config, "test_accuracy": after["mnist"] / n_test, "finetune": report}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        save_checkpoint(model, config, tmp)
        export(tmp / "model.safetensors", formats, tmp, args.data_dir)
        (tmp / "finetune.json").write_text(json.dumps(report, indent=2) + "\n")
        os.rename(tmp, out)  # atomic (and it fails if a non-empty folder appeared there meanwhile)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"wrote {out}: the fine-tuned checkpoint, its exports and finetune.json")
    model_file = next((p for p in (out / "model_int8.tflite", out / "model.onnx") if p.exists()), None)
    if model_file:
        print(f"next: edgedigits camera --model {model_file}")
    return 0
