"""Train a model on MNIST: seeded split, augmentation, AdamW/SGD, OneCycle/cosine,
early stopping on validation accuracy, best checkpoint kept, resumable."""

import json
import math
import platform
import random
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from edgedigits.errors import EdgeDigitsError

from . import data
from .augment import AugmentConfig, augment
from .checkpoint import atomic_write_text, save_checkpoint
from .models import build_model, count_macs, count_params

LAST_STATE = "last.pt"


@dataclass
class Recipe:
    model: str = "cnn"
    activation: str = "relu"
    pool: str = "max"
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "adamw"       # adamw | adam | sgd
    lr: float = 3e-3               # peak learning rate
    momentum: float = 0.9          # sgd only
    weight_decay: float = 5e-4
    schedule: str = "onecycle"     # onecycle | cosine | none
    label_smoothing: float = 0.05
    patience: int = 8              # epochs without a better validation accuracy ...
    min_epochs: int = 20           # ... counted only after this many (the LR anneals late)
    val_size: int = 5000
    limit: int = 0                 # train on the first N training digits only (0 = all)
    seed: int = 0
    deterministic: bool = False
    threads: int = 0               # 0 = torch default
    augment: dict = field(default_factory=lambda: AugmentConfig().to_dict())


QUICK = {"epochs": 4, "lr": 4e-3, "min_epochs": 4}


def set_seed(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float32 [N, 1, 28, 28] in [0, 1] (normalisation is in the model)."""
    return torch.tensor(images, dtype=torch.float32).div_(255.0).unsqueeze(1)


def make_optimizer(model, recipe: Recipe):
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=True)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(groups, lr=recipe.lr)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}; choose adamw, adam or sgd")


def make_scheduler(optimizer, recipe: Recipe, steps_per_epoch: int):
    total = recipe.epochs * steps_per_epoch
    if recipe.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=total,
                                                   pct_start=0.2)
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if recipe.schedule == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise ValueError(f"unknown schedule {recipe.schedule!r}; choose onecycle, cosine or none")


def train_one_epoch(model, x, y, optimizer, scheduler, recipe, aug_cfg, gen, device, desc):
    model.train()
    perm = torch.randperm(len(x), generator=gen)
    n_batches = math.ceil(len(x) / recipe.batch_size)
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(range(n_batches), desc=desc, leave=False, dynamic_ncols=True)
    for b in bar:
        idx = perm[b * recipe.batch_size:(b + 1) * recipe.batch_size]
        xb, yb = x[idx], y[idx]
        xb = augment(xb, aug_cfg, gen)
        xb, yb = xb.to(device), yb.to(device)
        logits = model(xb)
        loss = F.cross_entropy(logits, yb, label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.item() * len(yb)
        correct += (logits.argmax(1) == yb).sum().item()
        seen += len(yb)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
    return total_loss / seen, correct / seen


@torch.no_grad()
def predict_logits(model, x, device, batch_size: int = 1000) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


def evaluate_split(model, x, y, device):
    logits = predict_logits(model, x, device)
    loss = F.cross_entropy(logits, y).item()
    return loss, (logits.argmax(1) == y).float().mean().item()


def peak_memory_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if platform.system() == "Darwin" else rss / 1024


def save_state(path: Path, epoch, epochs, model, optimizer, scheduler, best_val, bad_epochs, history) -> None:
    """Resumable state; plain tensors and numbers only, so it loads with weights_only=True."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "best_val": best_val, "epochs": epochs,
                "bad_epochs": bad_epochs, "history": json.dumps(history)}, tmp)
    tmp.replace(path)


def base_config(recipe: Recipe, model, split_sizes) -> dict:
    return {
        "model": recipe.model, "activation": recipe.activation, "pool": recipe.pool,
        "model_kwargs": {}, "params": count_params(model), "macs": count_macs(model),
        "labels": [str(i) for i in range(10)],
        "input": {"shape": [1, 28, 28], "layout": "NCHW", "dtype": "float32",
                  "range": [0.0, 1.0], "ink": "white on black",
                  "preprocess": "MNIST: fit in 20x20 keeping aspect, centre of mass at the centre of 28x28"},
        "normalization": {"mean": data.MEAN, "std": data.STD, "where": "inside the model"},
        "recipe": asdict(recipe),
        "data": {"files": data.FILES, "split": split_sizes},
    }


def fit(recipe: Recipe, data_dir, out_dir: Path, device: str = "cpu", resume: bool = False,
        log=print) -> dict:
    """Train, keep the best checkpoint by validation accuracy, then evaluate it on the test set."""
    set_seed(recipe.seed, recipe.deterministic)
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    train_images, train_labels, test_images, test_labels = data.load_mnist(data_dir)
    train_idx, val_idx = data.split_indices(len(train_images), recipe.val_size, recipe.seed)
    if recipe.limit:
        train_idx = train_idx[:recipe.limit]
    x_train, y_train = to_tensor(train_images[train_idx]), torch.tensor(train_labels[train_idx], dtype=torch.long)
    x_val, y_val = to_tensor(train_images[val_idx]), torch.tensor(train_labels[val_idx], dtype=torch.long)
    split = {"train": len(train_idx), "val": len(val_idx), "test": len(test_images), "seed": recipe.seed}
    log(f"data: {split['train']} train / {split['val']} validation (seed {recipe.seed}) / "
        f"{split['test']} test, from {data.resolve_data_dir(data_dir)}")

    model = build_model(recipe.model, recipe.activation, recipe.pool).to(device)
    config = base_config(recipe, model, split)
    log(f"model: {recipe.model} ({recipe.activation}, {recipe.pool} pool), "
        f"{config['params']:,} parameters, {config['macs']:,} MACs")
    aug_cfg = AugmentConfig(**recipe.augment)
    optimizer = make_optimizer(model, recipe)
    steps = math.ceil(len(x_train) / recipe.batch_size)
    scheduler = make_scheduler(optimizer, recipe, steps)
    gen = torch.Generator().manual_seed(recipe.seed)

    out_dir.mkdir(parents=True, exist_ok=True)
    start_epoch, best_val, bad_epochs, history = 0, -1.0, 0, []
    state_path = out_dir / LAST_STATE
    if resume and state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=True)
        if state["epochs"] != recipe.epochs:
            raise EdgeDigitsError(f"{state_path} belongs to a {state['epochs']}-epoch run; resume it with "
                                  f"--epochs {state['epochs']} (the schedule depends on it)")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_val, bad_epochs = state["epoch"] + 1, state["best_val"], state["bad_epochs"]
        history = json.loads(state["history"])
        gen.manual_seed(recipe.seed + start_epoch)
        log(f"resumed from {state_path} at epoch {start_epoch + 1}")

    t0 = time.time() - sum(h["time_s"] for h in history)
    for epoch in range(start_epoch, recipe.epochs):
        te = time.time()
        loss, acc = train_one_epoch(model, x_train, y_train, optimizer, scheduler, recipe, aug_cfg,
                                    gen, device, f"epoch {epoch + 1}/{recipe.epochs}")
        val_loss, val_acc = evaluate_split(model, x_val, y_val, device)
        history.append({"epoch": epoch + 1, "train_loss": loss, "train_acc": acc, "val_loss": val_loss,
                        "val_acc": val_acc, "lr": optimizer.param_groups[0]["lr"],
                        "time_s": time.time() - te})
        improved = val_acc > best_val
        if improved:
            best_val, bad_epochs = val_acc, 0
            save_checkpoint(model, {**config, "best_epoch": epoch + 1, "val_accuracy": val_acc}, out_dir)
        else:
            bad_epochs += 1
        atomic_write_text(out_dir / "history.json", json.dumps(history, indent=1))
        save_state(state_path, epoch, recipe.epochs, model, optimizer, scheduler, best_val, bad_epochs, history)
        log(f"epoch {epoch + 1:3d}  loss {loss:.4f}  train {acc:.4f}  val loss {val_loss:.4f}  "
            f"val {val_acc:.4f}{' *' if improved else ''}  {time.time() - te:.0f}s")
        if bad_epochs >= recipe.patience and epoch + 1 >= recipe.min_epochs:
            log(f"early stop: validation accuracy has not improved for {recipe.patience} epochs")
            break
    return finish(out_dir, x_test=to_tensor(test_images), y_test=torch.tensor(test_labels, dtype=torch.long),
                  train_time=time.time() - t0, history=history, device=device, log=log)


def finish(out_dir: Path, x_test, y_test, train_time, history, device, log) -> dict:
    """Evaluate the best checkpoint on the test set; write its config and model card."""
    from .checkpoint import CONFIG, load_checkpoint
    from .card import write_model_card

    model, config = load_checkpoint(out_dir, device)
    _, test_acc = evaluate_split(model, x_test, y_test, device)
    config.update({"test_accuracy": test_acc, "epochs_run": len(history),
                   "train_time_s": round(train_time, 1), "peak_memory_mb": round(peak_memory_mb(), 1),
                   "torch": torch.__version__, "threads": torch.get_num_threads()})
    atomic_write_text(out_dir / CONFIG, json.dumps(config, indent=2) + "\n")
    write_model_card(out_dir, config, history)
    log(f"test accuracy {test_acc:.4%} (best epoch {config['best_epoch']}, val {config['val_accuracy']:.4%}); "
        f"{train_time / 60:.1f} min, peak memory {config['peak_memory_mb']:.0f} MB -> {out_dir}")
    return config
