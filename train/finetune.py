"""Fine-tune a trained model on a user's samples mixed with MNIST, without forgetting MNIST.

The loop of `edgedigits finetune` (export/finetune.py keeps the command, its checks and the
re-export). Each epoch mixes fresh MNIST training digits with the user's samples repeated so they
make up `user_share` of what the model sees, and runs `train.train_step` on it (the step
`train_one_epoch` runs) with the checkpoint's own recipe and augmentation, a one-cycle learning
rate from a low peak, BatchNorm statistics frozen, and the starting model's outputs on the MNIST
digits as a second target (distillation, "learning without forgetting").
"""

import copy
import math
import time
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from .augment import AugmentConfig
from .train import Recipe, make_optimizer, make_scheduler, to_tensor, train_step


@dataclass
class FinetuneSettings:
    epochs: int = 3
    mnist: int = 10000            # MNIST training digits replayed per epoch
    user_share: float = 0.25      # share of each epoch made of the user's samples, by repetition
    lr: float = 3e-4              # peak learning rate (one-cycle, AdamW)
    batch_size: int = 128
    distill: float = 5.0          # weight of the starting model's outputs on the MNIST digits (0: off)
    seed: int = 0
    device: str = "cpu"


def finetune_recipe(config: dict, settings: FinetuneSettings) -> Recipe:
    """The checkpoint's recipe with the fine-tuning schedule: AdamW, one cycle, cross-entropy with
    the recipe's label smoothing, no L1 (the recipe's distillation weight is the settings')."""
    known = {f.name for f in fields(Recipe)}
    recipe = Recipe(**{k: v for k, v in config.get("recipe", {}).items() if k in known})
    recipe.epochs, recipe.lr, recipe.schedule, recipe.optimizer = settings.epochs, settings.lr, "onecycle", "adamw"
    recipe.batch_size, recipe.loss, recipe.l1, recipe.distill = settings.batch_size, "ce", 0.0, settings.distill
    return recipe


def train_mode(model) -> None:
    """Dropout on, BatchNorm statistics FROZEN: a batch that is one quarter one person's style
    must not drag the running mean/variance away from what MNIST needs (the affine BN
    weights still learn)."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def finetune(model, config: dict, mnist_x, mnist_y, user_x, user_y, settings: FinetuneSettings,
             log=print) -> int:
    """Train `model` in place for settings.epochs mixed epochs; returns the number of steps run."""
    recipe = finetune_recipe(config, settings)
    aug = AugmentConfig(**recipe.augment)          # the checkpoint's own augmentation recipe
    rng = np.random.default_rng(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    n_mnist = min(settings.mnist, len(mnist_x))
    repeats = max(1, round(settings.user_share / (1 - settings.user_share) * n_mnist / len(user_x)))
    steps = math.ceil((n_mnist + repeats * len(user_x)) / settings.batch_size)
    optimizer = make_optimizer(model, recipe)
    scheduler = make_scheduler(optimizer, recipe, steps)
    teacher = copy.deepcopy(model).eval() if settings.distill > 0 else None   # the starting model, frozen
    for epoch in range(settings.epochs):
        t0, total, seen = time.time(), 0.0, 0
        pick = rng.choice(len(mnist_x), size=n_mnist, replace=False)
        x = to_tensor(np.concatenate([mnist_x[pick], np.tile(user_x, (repeats, 1, 1))]))
        y = torch.from_numpy(np.concatenate([mnist_y[pick], np.tile(user_y, repeats)]))
        perm = torch.randperm(len(x), generator=gen)
        train_mode(model)
        for b in range(steps):
            idx = perm[b * settings.batch_size:(b + 1) * settings.batch_size]
            is_mnist = idx < n_mnist        # distil on the MNIST digits, weighted by their share
            loss, _ = train_step(model, x[idx], y[idx], optimizer, scheduler, recipe, aug, gen,
                                 settings.device, teacher, distill_rows=is_mnist,
                                 distill=settings.distill * is_mnist.to(settings.device).float().mean())
            total, seen = total + loss * len(idx), seen + len(idx)
        log(f"epoch {epoch + 1}/{settings.epochs}: {n_mnist} MNIST digits + {len(user_x)} samples x{repeats}, "
            f"{steps} steps, loss {total / seen:.4f}, {time.time() - t0:.0f}s")
    model.eval()
    return steps * settings.epochs
