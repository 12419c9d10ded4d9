"""Train a model on MNIST: seeded split, augmentation, AdamW/SGD, OneCycle/cosine,
early stopping on validation accuracy, best checkpoint kept, resumable.

With `negatives=N` the model gets an 11th class, "none", trained on N synthetic marks that are not
handwritten digits (printed digits and text, letters, signs, rules; `negatives.py`), mixed into the
training set; validation then scores digits and marks together. `init=DIR` starts from the weights
of a trained checkpoint (a 10-class head grows an 11th row): the shipped cnn learns "none" in a few
epochs instead of a full run.
"""

import io
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

from . import data, rundir
from .augment import AugmentConfig, augment
from .checkpoint import atomic_write, atomic_write_text, save_checkpoint
from .models import build_model, class_labels, count_macs, count_params
from .names import LOSS_NAMES, OPTIMIZER_NAMES, SCHEDULE_NAMES

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
    negatives: int = 0             # synthetic "not a digit" marks in training (0 = 10 classes)
    init: str = ""                 # start from this checkpoint's weights (fine-tuning)
    distill: float = 0.0           # with init: hold the digits to what the init model said (LwF)
    loss: str = "ce"               # ce | mse | hinge | huber (see `loss_fn`)
    l1: float = 0.0                # L1 penalty on the weights (the same tensors weight decay acts on)
    dropout: float | None = None   # None = the model's own (cnn 0.1, cnn-tiny 0, mlp 0.2)
    batchnorm: bool | None = None  # None = the model's own (cnns on, mlp off)
    hidden: list | None = None     # mlp hidden sizes (None = [128])
    split_seed: int | None = None  # seed of the validation split and --limit subset (None = seed)
    photo_marks: str = ""          # labelled crops of real photos (`edgedigits harvest`), mixed in
    photo_repeat: int = 10         # ... each this many times (a few thousand would drown in 100k)

    @property
    def classes(self) -> int:
        return 11 if self.negatives else 10


QUICK = {"epochs": 4, "lr": 4e-3, "min_epochs": 4}
HUBER_DELTA = 0.1     # on probabilities a delta >= 1 would make Huber exactly MSE / 2


def model_kwargs(recipe: Recipe) -> dict:
    """The build arguments a recipe sets beyond the model's defaults (model.json keeps them)."""
    if recipe.hidden is not None and recipe.model != "mlp":
        raise EdgeDigitsError(f"hidden sizes are for the mlp, not {recipe.model}")
    if recipe.dropout is not None and not 0 <= recipe.dropout < 1:
        raise EdgeDigitsError(f"dropout must be in [0, 1), not {recipe.dropout}")
    kwargs = {"classes": recipe.classes} if recipe.classes != 10 else {}
    for name in ("dropout", "batchnorm", "hidden"):
        if getattr(recipe, name) is not None:
            kwargs[name] = getattr(recipe, name)
    return kwargs


def loss_fn(logits, y, recipe: Recipe):
    """The training loss. mse and huber compare the softmax with the one-hot target; hinge is the
    multi-class margin loss on the logits (Weston-Watkins: every wrong class 1 below the right one)."""
    if recipe.loss == "ce":
        return F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
    if recipe.loss == "hinge":
        return F.multi_margin_loss(logits, y)
    target = F.one_hot(y, logits.shape[1]).float()
    if recipe.loss == "mse":
        return F.mse_loss(F.softmax(logits, 1), target)
    if recipe.loss == "huber":
        return F.huber_loss(F.softmax(logits, 1), target, delta=HUBER_DELTA)
    raise EdgeDigitsError(f"unknown loss {recipe.loss!r}; choose from {', '.join(LOSS_NAMES)}")


def l1_penalty(model) -> torch.Tensor:
    return sum(p.abs().sum() for p in model.parameters() if p.ndim > 1)


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
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}; choose from {', '.join(OPTIMIZER_NAMES)}")


def make_scheduler(optimizer, recipe: Recipe, steps_per_epoch: int):
    total = recipe.epochs * steps_per_epoch
    if recipe.schedule == "onecycle" and total >= 4:
        # a warm-up of at least two steps (OneCycleLR divides by its length minus one)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=total,
                                                   pct_start=max(0.2, 2 / total))
    if recipe.schedule == "onecycle":         # a run of 1-3 steps: nothing to schedule
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if recipe.schedule == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise ValueError(f"unknown schedule {recipe.schedule!r}; choose from {', '.join(SCHEDULE_NAMES)}")


def distill_loss(logits, teacher, x, T: float = 2.0):
    """KL(teacher || student) at temperature T, scaled by T^2 (Hinton et al. 2015).

    On the MNIST digits of each batch the student is held to what the STARTING model said
    ("learning without forgetting", Li & Hoiem 2016), not only to the hard labels: that keeps
    its behaviour on MNIST-like digits, including the doubtful ones the test set is full of,
    while new data (a user's samples, the "none" marks) pull it elsewhere. Without it, a
    converged model loses a few tenths of a point on MNIST test even when fine-tuned on MNIST
    alone. Only the teacher's classes are compared (a 10-class teacher, an 11-class student).
    """
    with torch.no_grad():
        target = F.softmax(teacher(x) / T, 1)
    student = logits[:, :target.shape[1]]
    return F.kl_div(F.log_softmax(student / T, 1), target, reduction="batchmean") * T * T


def train_step(model, xb, yb, optimizer, scheduler, recipe, aug_cfg, gen, device, teacher=None,
               distill_rows=None, distill=None):
    """One optimisation step on a batch: augment, forward, loss (`loss_fn`, + `recipe.l1` times the
    L1 penalty, + with a teacher the distillation loss on `distill_rows` of the batch, by default
    its digits, weighted `distill`, by default `recipe.distill`), backward, optimizer and scheduler
    step. Returns (loss, number of the batch's labels the model read right)."""
    xb = augment(xb, aug_cfg, gen)
    xb, yb = xb.to(device), yb.to(device)
    logits = model(xb)
    loss = loss_fn(logits, yb, recipe)
    if recipe.l1:
        loss = loss + recipe.l1 * l1_penalty(model)
    rows = yb < 10 if distill_rows is None else distill_rows.to(device)
    if teacher is not None and rows.any():
        weight = recipe.distill if distill is None else distill
        loss = loss + weight * distill_loss(logits[rows], teacher, xb[rows])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item(), (logits.argmax(1) == yb).sum().item()


def train_one_epoch(model, x, y, optimizer, scheduler, recipe, aug_cfg, gen, device, desc, teacher=None):
    model.train()
    perm = torch.randperm(len(x), generator=gen)
    n_batches = math.ceil(len(x) / recipe.batch_size)
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(range(n_batches), desc=desc, leave=False, dynamic_ncols=True)
    for b in bar:
        idx = perm[b * recipe.batch_size:(b + 1) * recipe.batch_size]
        loss, right = train_step(model, x[idx], y[idx], optimizer, scheduler, recipe, aug_cfg, gen,
                                 device, teacher)
        total_loss += loss * len(idx)
        correct += right
        seen += len(idx)
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
    buffer = io.BytesIO()
    torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "best_val": best_val, "epochs": epochs,
                "bad_epochs": bad_epochs, "history": json.dumps(history)}, buffer)
    atomic_write(path, buffer.getvalue())


def base_config(recipe: Recipe, model, split_sizes) -> dict:
    return {
        "model": recipe.model, "activation": recipe.activation, "pool": recipe.pool,
        "model_kwargs": model_kwargs(recipe),
        "params": count_params(model), "macs": count_macs(model),
        "labels": class_labels(recipe.classes),
        "input": {"shape": [1, 28, 28], "layout": "NCHW", "dtype": "float32",
                  "range": [0.0, 1.0], "ink": "white on black",
                  "preprocess": "MNIST: fit in 20x20 keeping aspect, centre of mass at the centre of 28x28"},
        "normalization": {"mean": data.MEAN, "std": data.STD, "where": "inside the model"},
        "recipe": asdict(recipe),
        "data": {"files": data.FILES, "split": split_sizes},
    }


def init_from(model, path, log) -> None:
    """Copy a trained checkpoint's weights into `model`; a 10-class head fills the first ten rows
    of an 11-class one (the "none" row starts at zero)."""
    from .checkpoint import load_checkpoint

    source, config = load_checkpoint(path)
    state = source.state_dict()
    target = model.state_dict()
    for name, value in state.items():
        if name not in target:
            raise EdgeDigitsError(f"--init {path}: a {config['model']} checkpoint does not fit this model")
        if target[name].shape == value.shape:
            target[name] = value
        elif value.shape[0] == 10 and target[name].shape[0] == 11 and value.shape[1:] == target[name].shape[1:]:
            target[name] = torch.cat([value, torch.zeros_like(value[:1])])
        else:
            raise EdgeDigitsError(f"--init {path}: {name} has shape {list(value.shape)}, this model "
                                  f"{list(target[name].shape)}")
    model.load_state_dict(target)
    log(f"init: weights of {path} ({config['model']}, {len(config.get('labels', []))} classes)")


# marks a crop alone cannot tell from a handwritten digit: letters written like digits (l, O, S,
# Z, ...) and digits printed in a plain sans face (neat pencil digits look just like them); as
# "none" they teach the model to refuse real digits. The page tells print apart instead (a shared
# height, ink and typeface: `runtime.digits.printed_like`).
LEFT_OUT = ("hand_confusable", "printed_digit_sans")


def make_marks(n: int, seed: int):
    """n uint8 crops of synthetic non-digit marks, without the kinds in `LEFT_OUT`."""
    from .negatives import KINDS, make_negatives_with_kinds

    images, kinds = make_negatives_with_kinds(int(n * 1.2) + 10, seed=seed)
    keep = ~np.isin(kinds, [KINDS.index(k) for k in LEFT_OUT])
    return images[keep][:n]


# digits that read as another digit (or themselves) when turned: 6 and 9 by 180 degrees; 0, 1, 8
# are nearly symmetric, and a 1 on its side is a dash (the "line" kind has those)
TURN_SAFE = {1: (2, 3, 4, 5, 6, 7, 9), 2: (2, 3, 4, 5, 7), 3: (2, 3, 4, 5, 6, 7, 9)}


def turned_digits(images: np.ndarray, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n training digits turned by a quarter, a half or three quarters: on their side or upside
    down a digit is not a digit, which lets the reader tell which way up a sheet lies."""
    rng = np.random.default_rng(seed)
    out = []
    for quarters in rng.integers(1, 4, size=n):
        while True:
            i = int(rng.integers(len(images)))
            if labels[i] in TURN_SAFE[int(quarters)]:
                out.append(np.rot90(images[i], int(quarters)))
                break
    return np.stack(out) if out else np.zeros((0, 28, 28), np.uint8)


def negative_split(recipe: Recipe, val_n: int, images=None, labels=None):
    """(train, val) uint8 crops of non-digit marks, seeded by the recipe: synthetic marks, and
    one in six a training digit turned over (`turned_digits`) when the digits are given."""
    n = recipe.negatives + val_n
    turned = n // 6 if images is not None else 0
    marks = make_marks(n - turned, seed=recipe.seed)
    if turned:
        marks = np.concatenate([marks, turned_digits(images, labels, turned, recipe.seed)])
        marks = marks[np.random.default_rng(recipe.seed).permutation(len(marks))]
    return marks[:recipe.negatives], marks[recipe.negatives:]


def fit(recipe: Recipe, data_dir, out_dir: Path, device: str = "cpu", resume: bool = False,
        log=print, force: bool = False) -> dict:
    """Train, keep the best checkpoint by validation accuracy, then evaluate it on the test set.
    A finished model in out_dir is trained over only with `force` (see `rundir`)."""
    rundir.check_out_dir(out_dir, resume, force)
    state = rundir.load_state(Path(out_dir) / LAST_STATE, device) if resume else None   # fail fast
    set_seed(recipe.seed, recipe.deterministic)
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    train_images, train_labels, test_images, test_labels = data.load_mnist(data_dir)
    split_seed = recipe.seed if recipe.split_seed is None else recipe.split_seed
    train_idx, val_idx = data.split_indices(len(train_images), recipe.val_size, split_seed)
    if recipe.limit:
        train_idx = train_idx[:recipe.limit]
    x_train, y_train = to_tensor(train_images[train_idx]), torch.tensor(train_labels[train_idx], dtype=torch.long)
    x_val, y_val = to_tensor(train_images[val_idx]), torch.tensor(train_labels[val_idx], dtype=torch.long)
    split = {"train": len(train_idx), "val": len(val_idx), "test": len(test_images), "seed": split_seed}
    log(f"data: {split['train']} train / {split['val']} validation (seed {split_seed}) / "
        f"{split['test']} test, from {data.resolve_data_dir(data_dir)}")
    if recipe.negatives:
        neg_train, neg_val = negative_split(recipe, max(1000, recipe.negatives // 10),
                                            train_images[train_idx], train_labels[train_idx])
        x_train = torch.cat([x_train, to_tensor(neg_train)])
        y_train = torch.cat([y_train, torch.full((len(neg_train),), 10, dtype=torch.long)])
        x_val = torch.cat([x_val, to_tensor(neg_val)])
        y_val = torch.cat([y_val, torch.full((len(neg_val),), 10, dtype=torch.long)])
        split.update(negatives_train=len(neg_train), negatives_val=len(neg_val))
        log(f"negatives: {len(neg_train)} train / {len(neg_val)} validation marks that are not digits "
            f"(class 'none')")

    if recipe.photo_marks:
        from .negatives import photo_marks
        crops, labels = photo_marks(recipe.photo_marks, recipe.classes)
        x_train = torch.cat([x_train, to_tensor(np.repeat(crops, recipe.photo_repeat, 0))])
        y_train = torch.cat([y_train, torch.tensor(np.repeat(labels, recipe.photo_repeat), dtype=torch.long)])
        split.update(photo_marks=len(crops))
        log(f"photo marks: {len(crops)} crops of real photos ({int((labels == 10).sum())} 'none'), "
            f"each seen {recipe.photo_repeat} times per epoch, from {recipe.photo_marks}")

    model = build_model(recipe.model, recipe.activation, recipe.pool, **model_kwargs(recipe)).to(device)
    if recipe.init and not resume:
        init_from(model, recipe.init, log)
    teacher = None
    if recipe.init and recipe.distill:
        from .checkpoint import load_checkpoint
        teacher = load_checkpoint(recipe.init, device)[0].eval()
    config = base_config(recipe, model, split)
    log(f"model: {recipe.model} ({recipe.activation}, {recipe.pool} pool, {recipe.loss} loss), "
        f"{config['params']:,} parameters, {config['macs']:,} MACs")
    aug_cfg = AugmentConfig(**recipe.augment)
    optimizer = make_optimizer(model, recipe)
    steps = math.ceil(len(x_train) / recipe.batch_size)
    scheduler = make_scheduler(optimizer, recipe, steps)
    gen = torch.Generator().manual_seed(recipe.seed)

    out_dir.mkdir(parents=True, exist_ok=True)
    start_epoch, best_val, bad_epochs, history = 0, -1.0, 0, []
    state_path = out_dir / LAST_STATE
    if state is not None:
        start_epoch, best_val, bad_epochs, history = rundir.restore(state_path, state, model, optimizer,
                                                                    scheduler, recipe.epochs)
        gen.manual_seed(recipe.seed + start_epoch)
        log(f"resumed from {state_path} at epoch {start_epoch + 1}")

    t0 = time.time() - sum(h["time_s"] for h in history)
    for epoch in range(start_epoch, recipe.epochs):
        te = time.time()
        loss, acc = train_one_epoch(model, x_train, y_train, optimizer, scheduler, recipe, aug_cfg,
                                    gen, device, f"epoch {epoch + 1}/{recipe.epochs}", teacher)
        val_loss, val_acc = evaluate_split(model, x_val, y_val, device)
        history.append({"epoch": epoch + 1, "train_loss": loss, "train_acc": acc, "val_loss": val_loss,
                        "val_acc": val_acc, "lr": optimizer.param_groups[0]["lr"],
                        "time_s": time.time() - te})
        improved = val_acc > best_val
        if improved:
            best_val, bad_epochs = val_acc, 0
            save_checkpoint(model, {**config, "best_epoch": epoch + 1, "val_accuracy": val_acc},
                            out_dir / rundir.BEST)
        else:
            bad_epochs += 1
        atomic_write_text(out_dir / "history.json", json.dumps(history, indent=1))
        save_state(state_path, epoch, recipe.epochs, model, optimizer, scheduler, best_val, bad_epochs, history)
        log(f"epoch {epoch + 1:3d}  loss {loss:.4f}  train {acc:.4f}  val loss {val_loss:.4f}  "
            f"val {val_acc:.4f}{' *' if improved else ''}  {time.time() - te:.0f}s")
        if bad_epochs >= recipe.patience and epoch + 1 >= recipe.min_epochs:
            log(f"early stop: validation accuracy has not improved for {recipe.patience} epochs")
            break
    x_neg = None
    if recipe.negatives:       # marks never seen in training or validation (another seed)
        x_neg = (to_tensor(make_marks(max(1000, recipe.negatives // 10), seed=recipe.seed + 1)),
                 to_tensor(turned_digits(test_images, test_labels, 1000, recipe.seed + 1)))
    return finish(out_dir, x_test=to_tensor(test_images), y_test=torch.tensor(test_labels, dtype=torch.long),
                  train_time=time.time() - t0, history=history, device=device, log=log, x_neg=x_neg)


def rejection(model, x_test, y_test, x_neg, device) -> dict:
    """How the "none" class behaves: test digits wrongly called "none" (and the accuracy of the ten
    digit outputs alone), held-out synthetic marks and turned-over test digits rejected."""
    marks, turned = x_neg

    def none_rate(logits):
        return (logits.argmax(1) == 10).float().mean().item()

    test = predict_logits(model, x_test, device)
    return {"mnist_test_called_none": none_rate(test),
            "digit_outputs_accuracy": (test[:, :10].argmax(1) == y_test).float().mean().item(),
            "negatives_test_rejected": none_rate(predict_logits(model, marks, device)),
            "negatives_test_n": len(marks),
            "turned_test_digits_rejected": none_rate(predict_logits(model, turned, device)),
            "turned_test_digits_n": len(turned)}


def finish(out_dir: Path, x_test, y_test, train_time, history, device, log, x_neg=None) -> dict:
    """Evaluate the best checkpoint on the test set; write its config and model card."""
    from .checkpoint import CONFIG, load_checkpoint
    from .card import write_model_card

    rundir.promote(out_dir)              # the run's best model replaces what was there only now
    model, config = load_checkpoint(out_dir, device)
    _, test_acc = evaluate_split(model, x_test, y_test, device)
    if x_neg is not None:
        r = config["rejection"] = rejection(model, x_test, y_test, x_neg, device)
        config["digit_outputs_accuracy"] = r.pop("digit_outputs_accuracy")
        log(f"none class: {r['negatives_test_rejected']:.2%} of held-out marks and "
            f"{r['turned_test_digits_rejected']:.2%} of turned test digits rejected, "
            f"{r['mnist_test_called_none']:.2%} of MNIST test digits called none")
    config.update({"test_accuracy": test_acc, "epochs_run": len(history),
                   "train_time_s": round(train_time, 1), "peak_memory_mb": round(peak_memory_mb(), 1),
                   "torch": torch.__version__, "threads": torch.get_num_threads()})
    atomic_write_text(out_dir / CONFIG, json.dumps(config, indent=2) + "\n")
    write_model_card(out_dir, config, history)
    log(f"test accuracy {test_acc:.4%} (best epoch {config['best_epoch']}, val {config['val_accuracy']:.4%}); "
        f"{train_time / 60:.1f} min, peak memory {config['peak_memory_mb']:.0f} MB -> {out_dir}")
    return config
