"""The model zoo: an MLP baseline and two small CNNs, all quantization-friendly.

Every model takes float32 [N, 1, 28, 28] pixels in [0, 1] (white ink on black, MNIST-style)
and returns [N, classes] logits: 10 digits, or 11 with a last "not a digit" class (`NONE_LABEL`),
trained on marks that are not handwritten digits (`train/negatives.py`). MNIST normalisation happens inside the model, so exported
files have the simplest possible input contract for app developers.
"""

import torch
from torch import nn

from .data import MEAN, STD

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
    """The classic 784-128-10 baseline."""

    def __init__(self, hidden: int = 128, activation: str = "relu", dropout: float = 0.2,
                 classes: int = 10, **_):
        super().__init__()
        self.net = nn.Sequential(
            Normalize(), nn.Flatten(), nn.Linear(784, hidden), ACTIVATIONS[activation](),
            nn.Dropout(dropout), nn.Linear(hidden, classes),
        )

    def forward(self, x):
        return self.net(x)


def conv_bn_act(cin: int, cout: int, activation: str) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         ACTIVATIONS[activation]())


class ConvNet(nn.Module):
    """Stages of conv/BN/act blocks, pooled 28 -> 14 -> 7, then global average pooling."""

    def __init__(self, widths=(16, 32, 64), blocks=(2, 2, 2), activation: str = "relu",
                 pool: str = "max", dropout: float = 0.1, classes: int = 10, **_):
        super().__init__()
        layers, cin = [Normalize()], 1
        for i, (w, n) in enumerate(zip(widths, blocks)):
            if i > 0:
                layers.append(POOLS[pool](2))
            for _ in range(n):
                layers.append(conv_bn_act(cin, w, activation))
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
