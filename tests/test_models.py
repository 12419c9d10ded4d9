"""Models: shapes, parameter budgets, forward/backward, every activation and pooling."""

import pytest
import torch

from edgedigits.train.models import MODELS, build_model, count_macs, count_params

BUDGETS = {"mlp": 110_000, "cnn": 100_000, "cnn-tiny": 12_000}


@pytest.mark.parametrize("name", list(MODELS))
def test_shape_and_budget(name):
    model = build_model(name)
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert count_params(model) <= BUDGETS[name]
    assert count_macs(model) > 0


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "prelu", "elu"])
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_forward_backward(activation, pool):
    model = build_model("cnn-tiny", activation, pool)
    loss = torch.nn.functional.cross_entropy(model(torch.rand(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_normalisation_is_inside_the_model():
    model = build_model("mlp").eval()
    first = model.net[0]
    x = torch.full((1, 1, 28, 28), 0.1307)
    assert torch.allclose(first(x), torch.zeros_like(x), atol=1e-6)


def test_unknown_model():
    with pytest.raises(ValueError, match="choose from"):
        build_model("resnet")
