"""Evaluate a checkpoint on the 10k MNIST test set: accuracy, per-class precision/recall/F1,
confusion matrix, misclassified digits, training curves."""

import json
from pathlib import Path

import numpy as np
import torch

from . import data
from .checkpoint import load_checkpoint, resolve_weights
from .plots import plot_confusion, plot_curves, plot_misclassified
from .train import predict_logits, to_tensor


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n: int = 10) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (true, pred), 1)
    return cm


def per_class(cm: np.ndarray, labels=None) -> dict:
    """Precision, recall, F1 and support of each class that has test examples (MNIST has no
    "none" examples: that class shows only as the digits it took, in the recall of the others)."""
    labels = labels or [str(c) for c in range(cm.shape[0])]
    tp = np.diag(cm).astype(float)
    precision = tp / np.maximum(cm.sum(0), 1)
    recall = tp / np.maximum(cm.sum(1), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return {labels[c]: {"precision": precision[c], "recall": recall[c], "f1": f1[c],
                        "support": int(cm[c].sum())} for c in range(cm.shape[0]) if cm[c].sum()}


def evaluate(weights, data_dir, out_dir: Path, device: str = "cpu") -> dict:
    model, config = load_checkpoint(weights, device)
    _, _, test_images, test_labels = data.load_mnist(data_dir)
    logits = predict_logits(model, to_tensor(test_images), device)
    prob = torch.softmax(logits, 1)
    pred = prob.argmax(1).numpy()
    labels = config.get("labels", [str(d) for d in range(10)])
    cm = confusion_matrix(test_labels, pred, len(labels))       # an 11-class model: a "none" column
    wrong = np.flatnonzero(pred != test_labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "confusion": str(plot_confusion(cm[:10], out_dir / "confusion.png", labels)),
        "misclassified": str(plot_misclassified(test_images[wrong], test_labels[wrong], pred[wrong],
                                                prob.max(1).values.numpy()[wrong],
                                                out_dir / "misclassified.png")),
    }
    history = resolve_weights(weights).with_name("history.json")
    if history.exists():
        figures["curves"] = str(plot_curves(json.loads(history.read_text()), out_dir / "curves.png"))
    return {"weights": str(resolve_weights(weights)), "model": config["model"], "n": int(len(test_labels)),
            "accuracy": float((pred == test_labels).mean()), "errors": int(len(wrong)),
            "called_none": int((pred == 10).sum()) if len(labels) > 10 else 0,
            "digit_outputs_accuracy": float((logits[:, :10].argmax(1).numpy() == test_labels).mean()),
            "per_class": per_class(cm, labels), "confusion_matrix": cm.tolist(), "figures": figures}


def format_report(result: dict) -> str:
    none = (f", {result['called_none']} of them called none; the ten digit outputs alone: "
            f"{result['digit_outputs_accuracy']:.4%}") if result.get("called_none") else ""
    lines = [f"{result['model']} on {result['n']} MNIST test digits: accuracy {result['accuracy']:.4%} "
             f"({result['errors']} errors{none})", "", "class  precision  recall     f1  support"]
    for c, m in result["per_class"].items():
        lines.append(f"{c:>5}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:.4f}  {m['support']:7d}")
    lines.append("")
    lines += [f"{name}: {path}" for name, path in result["figures"].items()]
    return "\n".join(lines)
