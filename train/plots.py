"""PNG figures: training curves, confusion matrix, misclassified digits, augmentation grid."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curves(history: list, path: Path) -> Path:
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax1.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax2.plot(epochs, [100 * h["train_acc"] for h in history], label="train (augmented)")
    ax2.plot(epochs, [100 * h["val_acc"] for h in history], label="validation")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    return save(fig, path)


def plot_confusion(cm: np.ndarray, path: Path, labels=None) -> Path:
    """True digits (rows) against predicted classes (columns: an 11-class model adds "none")."""
    fig, ax = plt.subplots(figsize=(6, 5.4))
    shown = np.log1p(cm)
    ax.imshow(shown, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] > shown.max() / 2 else "black")
    labels = labels or [str(c) for c in range(cm.shape[1])]
    ax.set(xticks=range(cm.shape[1]), yticks=range(cm.shape[0]), xlabel="predicted", ylabel="true",
           title=f"confusion matrix ({cm.sum()} digits, {np.trace(cm)} right)")
    ax.set_xticklabels(labels, fontsize=7)
    return save(fig, path)


def plot_misclassified(images, true, pred, prob, path: Path, limit: int = 64) -> Path:
    n = min(limit, len(images))
    cols = 8
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.45))
    for k, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k], cmap="gray")
            ax.set_title(f"{true[k]}->{pred[k]} {prob[k]:.2f}", fontsize=7, color="red")
    fig.suptitle("misclassified test digits (true->predicted probability)", fontsize=9)
    return save(fig, path)


def plot_grid(grid: np.ndarray, row_names, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(grid.shape[1] / 28 * 0.7, grid.shape[0] / 28 * 0.7))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.set_yticks([28 * i + 14 for i in range(len(row_names))], row_names)
    ax.set_xticks([])
    return save(fig, path)
