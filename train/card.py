"""The model card the trainer writes beside every checkpoint."""

from pathlib import Path

from .checkpoint import atomic_write_text
from .plots import plot_curves


def digit_outputs(config: dict) -> str:
    """For an 11-class model: the accuracy of its ten digit outputs alone (argmax over 0-9)."""
    acc = config.get("digit_outputs_accuracy")
    return f"; the ten digit outputs alone (argmax over 0-9): **{100 * acc:.2f}%**" if acc else ""


def output_line(config: dict) -> str:
    labels = config.get("labels", [str(d) for d in range(10)])
    if len(labels) == 10:
        return "`[N, 10]` logits for the labels `0`..`9` (softmax for probabilities)."
    return (f"`[N, {len(labels)}]` logits for the labels `0`..`9` and `{labels[10]}` (not a handwritten "
            f"digit); a mark is rejected when the softmax gives `{labels[10]}` more than "
            f"{config.get('none_threshold', 0.5)}, else its digit is the argmax of the ten digit outputs.")


def none_lines(config: dict) -> str:
    """The "none" class's part of the recipe and its measured behaviour, if the model has one."""
    recipe, split = config["recipe"], config["data"]["split"]
    if not recipe.get("negatives"):
        return ""
    text = (f"\n- \"none\" class: {split.get('negatives_train', recipe['negatives']):,} synthetic non-digit marks "
            f"in training, {split.get('negatives_val', 0):,} in validation (`train/negatives.py`, one in six a "
            f"training digit turned over)")
    if recipe.get("init"):
        text += f"\n- started from `{recipe['init']}`" + (
            f", its digit outputs held by distillation (weight {recipe['distill']})" if recipe.get("distill") else "")
    r = config.get("rejection")
    if r:
        text += (f"\n- rejected as none (argmax): {100 * r['negatives_test_rejected']:.1f}% of "
                 f"{r['negatives_test_n']:,} held-out synthetic marks, {100 * r['turned_test_digits_rejected']:.1f}% "
                 f"of {r['turned_test_digits_n']:,} turned test digits; {100 * r['mnist_test_called_none']:.2f}% "
                 f"of MNIST test digits called none")
    return text


def architecture(config: dict) -> str:
    """`cnn` (relu, max pool) plus what the recipe changed: MLP widths, dropout, BatchNorm."""
    kwargs = config.get("model_kwargs", {})
    parts = [config["activation"]] + ([] if config["model"] == "mlp" else [f"{config['pool']} pool"])
    if "hidden" in kwargs:
        parts.append("hidden " + "-".join(str(h) for h in kwargs["hidden"]))
    if "dropout" in kwargs:
        parts.append(f"dropout {kwargs['dropout']}")
    if "batchnorm" in kwargs:
        parts.append("BatchNorm" if kwargs["batchnorm"] else "no BatchNorm")
    return f"`{config['model']}` ({', '.join(parts)})"


def loss_line(recipe: dict) -> str:
    loss = recipe.get("loss", "ce")
    text = {"ce": f"cross-entropy (label smoothing {recipe['label_smoothing']})",
            "mse": "MSE of the softmax against one-hot targets",
            "huber": "Huber (delta 0.1) of the softmax against one-hot targets",
            "hinge": "multi-class hinge (margin 1) on the logits"}[loss]
    return text + (f", L1 {recipe['l1']} on the weights" if recipe.get("l1") else "")


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
| architecture | {architecture(config)} |
| parameters | {config['params']:,} |
| MACs per digit | {config['macs']:,} |
| MNIST test accuracy | **{100 * config['test_accuracy']:.2f}%** (10,000 digits){digit_outputs(config)} |
| validation accuracy | {100 * config['val_accuracy']:.2f}% (best epoch {config['best_epoch']} of {config['epochs_run']}) |
| training time | {config['train_time_s'] / 60:.1f} min on {config['threads']} CPU thread(s), peak memory {config['peak_memory_mb']:.0f} MB |
| torch | {config['torch']} |

## Input and output
- Input: float32 `[N, 1, 28, 28]`, pixels in [0, 1], **white ink on black**, digit fitted in a
  20x20 box keeping its aspect ratio and centred by centre of mass in 28x28 (how MNIST was made).
- Normalisation (mean {config['normalization']['mean']}, std {config['normalization']['std']}) is
  applied inside the model.
- Output: {output_line(config)}

## Recipe
- data: {split['train']:,} training / {split['val']:,} validation digits (seeded split, seed {split['seed']}),
  {split['test']:,} test digits touched only by evaluation
- optimizer `{recipe['optimizer']}`, lr {recipe['lr']}, weight decay {recipe['weight_decay']},
  schedule `{recipe['schedule']}`, batch {recipe['batch_size']}
- loss: {loss_line(recipe)}
- up to {recipe['epochs']} epochs, early stopping patience {recipe['patience']}, seed {recipe['seed']}
- augmentation: {aug}{none_lines(config)}

## Data checksums (sha256 of the canonical gzip files)
| file | sha256 |
|---|---|
{files}

![training curves](curves.png)
"""
    path = out_dir / "MODEL_CARD.md"
    atomic_write_text(path, text)
    return path
