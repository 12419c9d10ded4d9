"""Two ways to say "not a digit", measured against each other (`edgedigits compare-none`).

A  one model with an 11th class, "none" (the shipped cnn: `train --negatives`);
B  the 10-class digit model plus a second, small binary model (cnn-tiny: digit or not) run on
   every crop; a crop is rejected when the binary model says "none".

B's binary model is trained here on the same kind of data as A's "none" class (MNIST training
digits against synthetic marks and turned-over digits, `train.negative_split`), for a few epochs.
Both are scored on the same held-out data: the 10k MNIST test digits (accuracy with rejections
counted as errors, and the share rejected), synthetic marks of another seed and turned test
digits (the share rejected), and optionally the labelled crops of real photos (`edgedigits
harvest`: real marks rejected, real digits kept and read right), plus their size and cost.
"""

import json
import time
from pathlib import Path

import numpy as np
import torch

from . import data
from .augment import AugmentConfig
from .checkpoint import atomic_write_text, load_checkpoint
from .models import build_model, count_macs, count_params
from .train import (Recipe, make_marks, make_optimizer, make_scheduler, negative_split, predict_logits,
                    set_seed, to_tensor, train_one_epoch, turned_digits)


def train_binary(images, labels, negatives: int, epochs: int, seed: int, device: str, log=print):
    """cnn-tiny with two outputs (0 = digit, 1 = none) on the MNIST training digits and
    `negatives` marks (as `train --negatives` makes them)."""
    recipe = Recipe(model="cnn-tiny", negatives=negatives, epochs=epochs, lr=3e-3, seed=seed)
    set_seed(seed, False)
    marks, _ = negative_split(recipe, 0, images, labels)
    x = torch.cat([to_tensor(images), to_tensor(marks)])
    y = torch.cat([torch.zeros(len(images), dtype=torch.long), torch.ones(len(marks), dtype=torch.long)])
    model = build_model("cnn-tiny", classes=2).to(device)
    optimizer = make_optimizer(model, recipe)
    scheduler = make_scheduler(optimizer, recipe, int(np.ceil(len(x) / recipe.batch_size)))
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        loss, acc = train_one_epoch(model, x, y, optimizer, scheduler, recipe, AugmentConfig(), gen, device,
                                    f"binary {epoch + 1}/{epochs}")
        log(f"binary epoch {epoch + 1}/{epochs}: loss {loss:.4f}, train accuracy {acc:.4f}")
    return model.eval()


def class_rule(model, device):
    """A: (digit read, rejected) from the 11-class model's own argmax ("none" = class 10)."""
    def run(x):
        p = torch.softmax(predict_logits(model, x, device), 1)
        return p[:, :10].argmax(1), p[:, 10] > 0.5
    return run


def pair_rule(digits, binary, device):
    """B: (digit read by the 10-class model, rejected by the binary one)."""
    def run(x):
        read = predict_logits(digits, x, device)[:, :10].argmax(1)
        return read, torch.softmax(predict_logits(binary, x, device), 1)[:, 1] > 0.5
    return run


def score(rule, tests: dict) -> dict:
    """The figures of one way on the held-out sets."""
    x, y = tests["mnist"]
    read, rejected = rule(x)
    out = {"mnist_accuracy": ((read == y) & ~rejected).float().mean().item(),
           "mnist_rejected": rejected.float().mean().item()}
    for name in ("marks", "turned"):
        out[f"{name}_rejected"] = rule(tests[name])[1].float().mean().item()
    if "photo" in tests:
        x, y = tests["photo"]
        read, rejected = rule(x)
        none = y == 10
        out["photo_none_rejected"] = rejected[none].float().mean().item() if none.any() else None
        out["photo_digits_read"] = ((read == y) & ~rejected)[~none].float().mean().item() if (~none).any() else None
    start = time.perf_counter()
    for _ in range(3):
        rule(tests["mnist"][0][:1000])
    out["ms_per_1000_crops"] = (time.perf_counter() - start) / 3 * 1000
    return out


def compare(model_dir: Path, digits_dir: Path, data_dir, negatives: int, epochs: int, photo_marks=None,
            seed: int = 0, device: str = "cpu", limit: int = 0, held_out: int = 2000, log=print) -> dict:
    """Both ways scored on the same held-out sets (the MNIST test digits, `held_out` synthetic
    marks of another seed, half as many turned test digits); the binary model trained on the first
    `limit` training digits (0 = all) and `negatives` marks."""
    train_images, train_labels, test_images, test_labels = data.load_mnist(data_dir)
    if limit:
        train_images, train_labels = train_images[:limit], train_labels[:limit]
        test_images, test_labels = test_images[:limit], test_labels[:limit]
    tests = {"mnist": (to_tensor(test_images), torch.tensor(test_labels, dtype=torch.long)),
             "marks": to_tensor(make_marks(held_out, seed=seed + 1)),
             "turned": to_tensor(turned_digits(test_images, test_labels, held_out // 2, seed + 1))}
    if photo_marks:
        from .negatives import photo_marks as load_photo_marks
        crops, labels = load_photo_marks(photo_marks)
        tests["photo"] = (to_tensor(crops), torch.tensor(labels))
    one, _ = load_checkpoint(model_dir, device)
    digits, _ = load_checkpoint(digits_dir, device)
    binary = train_binary(train_images, train_labels, negatives, epochs, seed, device, log)
    ways = {
        "A: one model, 11th class": (class_rule(one.eval(), device), [one]),
        "B: 10-class + binary cnn-tiny": (pair_rule(digits.eval(), binary, device), [digits, binary]),
    }
    report = {}
    for name, (rule, models) in ways.items():
        report[name] = {**score(rule, tests), "params": sum(count_params(m) for m in models),
                        "macs": sum(count_macs(m) for m in models)}
    return {"model": str(model_dir), "digits": str(digits_dir), "binary": {"negatives": negatives, "epochs": epochs},
            "photo_marks": str(photo_marks) if photo_marks else None, "ways": report}


def table(result: dict) -> str:
    cols = [("mnist_accuracy", "MNIST acc", "{:.2%}"), ("mnist_rejected", "MNIST rejected", "{:.2%}"),
            ("marks_rejected", "marks rejected", "{:.1%}"), ("turned_rejected", "turned rejected", "{:.1%}"),
            ("photo_none_rejected", "photo none rejected", "{:.1%}"),
            ("photo_digits_read", "photo digits read", "{:.1%}"),
            ("params", "params", "{:,}"), ("macs", "MACs", "{:,}"), ("ms_per_1000_crops", "ms / 1000 crops", "{:.0f}")]
    lines = ["| way | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in result["ways"].items():
        cells = ["-" if r.get(k) is None else fmt.format(r[k]) for k, _, fmt in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(out: Path, result: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "none_head.json", json.dumps(result, indent=2))
    atomic_write_text(out / "none_head.md", table(result) + "\n")
