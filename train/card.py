"""The model card the trainer writes beside every checkpoint."""

from pathlib import Path

from .checkpoint import atomic_write_text
from .plots import plot_curves


def write_model_card(out_dir: Path, config: dict, history: list) -> Path:
    recipe = config["recipe"]
    if history:
        plot_curves(history, out_dir / "curves.png")
    aug = ", ".join(k for k in ("affine", "elastic", "thickness", "blur", "contrast", "noise")
                    if recipe["augment"].get(k)) or "none"
    files = "\n".join(f"| `{name}` | `{sha}` |" for name, sha in config["data"]["files"].items())
    split = config["data"]["split"]
    text = f"""# Model card: `{config['model']}`

| | |
|---|---|
| architecture | `{config['model']}` ({config['activation']}, {config['pool']} pool) |
| parameters | {config['params']:,} |
| MACs per digit | {config['macs']:,} |
| MNIST test accuracy | **{100 * config['test_accuracy']:.2f}%** (10,000 digits) |
| validation accuracy | {100 * config['val_accuracy']:.2f}% (best epoch {config['best_epoch']} of {config['epochs_run']}) |
| training time | {config['train_time_s'] / 60:.1f} min on {config['threads']} CPU thread(s), peak memory {config['peak_memory_mb']:.0f} MB |
| torch | {config['torch']} |

## Input and output
- Input: float32 `[N, 1, 28, 28]`, pixels in [0, 1], **white ink on black**, digit fitted in a
  20x20 box keeping its aspect ratio and centred by centre of mass in 28x28 (how MNIST was made).
- Normalisation (mean {config['normalization']['mean']}, std {config['normalization']['std']}) is
  applied inside the model.
- Output: `[N, 10]` logits for the labels `0`..`9` (softmax for probabilities).

## Recipe
- data: {split['train']:,} training / {split['val']:,} validation digits (seeded split, seed {split['seed']}),
  {split['test']:,} test digits touched only by evaluation
- optimizer `{recipe['optimizer']}`, lr {recipe['lr']}, weight decay {recipe['weight_decay']},
  schedule `{recipe['schedule']}`, batch {recipe['batch_size']}, label smoothing {recipe['label_smoothing']}
- up to {recipe['epochs']} epochs, early stopping patience {recipe['patience']}, seed {recipe['seed']}
- augmentation: {aug}

## Data checksums (sha256 of the canonical gzip files)
| file | sha256 |
|---|---|
{files}

![training curves](curves.png)
"""
    path = out_dir / "MODEL_CARD.md"
    atomic_write_text(path, text)
    return path
