"""The model zoo: an MLP baseline and two small CNNs, all quantization-friendly.

Every model takes float32 [N, 1, 28, 28] pixels in [0, 1] (white ink on black, MNIST-style)
and returns [N, classes] logits: 10 digits, or 11 with a last "not a digit" class (`NONE_LABEL`),
trained on marks that are not handwritten digits (`train/negatives.py`). MNIST normalisation happens inside the model, so exported
files have the simplest possible input contract for app developers.
"""

import torch
from torch import nn

from .data import MEAN, STD
from .names import POOL_NAMES

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "prelu": nn.PReLU,
    "elu": nn.ELU,
}
POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
DIGITS = [str(d) for d in range(10)]
NONE_LABEL = "none"          # the 11th class: printed text, letters, signs, rules, specks


def class_labels(classes: int) -> list:
    """The label of each output: the ten digits, then "none" for an 11-class model."""
    if classes not in (10, 11):
        raise ValueError(f"a model has 10 or 11 classes, not {classes}")
    return DIGITS + [NONE_LABEL] * (classes - 10)


class Normalize(nn.Module):
    """(x - mean) / std as one multiply-add, so it folds into a single op in every format."""

    def __init__(self, mean: float = MEAN, std: float = STD):
        super().__init__()
        self.scale = 1.0 / std
        self.shift = -mean / std

    def forward(self, x):
        return x * self.scale + self.shift


class MLP(nn.Module):
    """The classic 784-128-10 baseline; `hidden` may list several layers ([256, 128]), each
    Linear (BatchNorm) activation Dropout."""

    def __init__(self, hidden=128, activation: str = "relu", dropout: float = 0.2,
                 batchnorm: bool = False, classes: int = 10, **_):
        super().__init__()
        sizes = [784] + ([hidden] if isinstance(hidden, int) else list(hidden))
        layers = [Normalize(), nn.Flatten()]
        for cin, cout in zip(sizes, sizes[1:]):
            layers.append(nn.Linear(cin, cout, bias=not batchnorm))
            layers += [nn.BatchNorm1d(cout)] if batchnorm else []
            layers += [ACTIVATIONS[activation](), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], classes))

    def forward(self, x):
        return self.net(x)


def conv_bn_act(cin: int, cout: int, activation: str, batchnorm: bool = True, stride: int = 1) -> nn.Sequential:
    """conv3x3 (no bias: BatchNorm has one), BatchNorm, activation; without BatchNorm the conv keeps its bias."""
    bn = [nn.BatchNorm2d(cout)] if batchnorm else []
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=not batchnorm), *bn,
                         ACTIVATIONS[activation]())


class ConvNet(nn.Module):
    """Stages of conv/BN/act blocks, pooled 28 -> 14 -> 7, then global average pooling.

    pool "max" or "avg" pools between stages; "gap" has the first conv of each later stage stride 2
    instead, so the global average is the only pooling."""

    def __init__(self, widths=(16, 32, 64), blocks=(2, 2, 2), activation: str = "relu",
                 pool: str = "max", dropout: float = 0.1, batchnorm: bool = True, classes: int = 10, **_):
        super().__init__()
        if pool not in POOL_NAMES:
            raise ValueError(f"unknown pool {pool!r}; choose from {', '.join(POOL_NAMES)}")
        layers, cin = [Normalize()], 1
        for i, (w, n) in enumerate(zip(widths, blocks)):
            if i > 0 and pool != "gap":
                layers.append(POOLS[pool](2))
            for j in range(n):
                stride = 2 if i > 0 and j == 0 and pool == "gap" else 1
                layers.append(conv_bn_act(cin, w, activation, batchnorm, stride))
                cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(cin, classes))

    def forward(self, x):
        return self.head(self.features(x))


# name -> (class, default kwargs)
MODELS = {
    "mlp": (MLP, {"hidden": 128}),
    "cnn": (ConvNet, {"widths": [16, 32, 64]}),
    "cnn-tiny": (ConvNet, {"widths": [8, 16, 32], "blocks": [2, 2, 1], "dropout": 0.0}),
}


def build_model(name: str, activation: str = "relu", pool: str = "max", **overrides) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    if "hidden" in overrides and name != "mlp":
        raise ValueError(f"hidden sizes are for the mlp, not {name}")
    cls, kwargs = MODELS[name]
    return cls(**{**kwargs, **overrides}, activation=activation, pool=pool)


def head(model: nn.Module) -> nn.Linear:
    """The last Linear layer (the class scores) of any model here."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module) -> int:
    """Multiply-accumulates of one 28x28 forward pass (conv and linear layers)."""
    macs = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs.append(output.numel() * k)
        elif isinstance(module, nn.Linear):
            macs.append(module.in_features * module.out_features)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    model.train(was_training)
    for h in handles:
        h.remove()
    return sum(macs)
