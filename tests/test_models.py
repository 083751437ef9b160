import pytest
import torch
from torch import nn

from fmnist_helpers.models import build_mlp, count_parameters, weight_penalty
from fmnist_helpers.study import STUDY


def _linear(i, o):
    return i * o + o


@pytest.mark.parametrize(
    "name, expected",
    [
        ("shallow", _linear(784, 10) + _linear(10, 10) + _linear(10, 10)),  # 8,070
        ("deeper", _linear(784, 10) + 6 * _linear(10, 10) + _linear(10, 10)),  # 8,620
        ("wide", _linear(784, 50) + _linear(50, 50) + _linear(50, 10)),  # 42,310
        ("dropout", 8070),
        ("early_stopping", 8070),
        ("batch_norm", 8070 + 2 * 2 * 10),  # gamma and beta per hidden unit
        ("l1", 8070), ("l2", 8070), ("l1_l2", 8070), ("l2_first", 8070),
        ("mixed", _linear(784, 50) + 2 * _linear(50, 50) + _linear(50, 10) + 3 * 2 * 50),
    ],
)
def test_parameter_counts(name, expected):
    assert count_parameters(STUDY[name].build()) == expected


def test_layer_order_is_linear_relu_batchnorm_dropout():
    model = build_mlp(3, 10, batch_norm=True, dropout=0.2)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Flatten", "Linear", "ReLU", "BatchNorm1d", "Dropout",
                     "Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
    assert model(torch.rand(4, 28, 28)).shape == (4, 10)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden": 0}, "hidden width"),
        ({"n_linear": 0}, "n_linear"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"n_linear": 1, "batch_norm": True}, "batch norm needs"),
    ],
)
def test_invalid_architectures_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_mlp(**kwargs)


def test_penalties_match_a_hand_computation():
    model = build_mlp(3, 2)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for k, layer in enumerate(linears):
            layer.weight.fill_(0.5 * (k + 1))  # |w| = 0.5, 1.0, 1.5
            layer.bias.fill_(100.0)  # biases are not penalised
    n = [784 * 2, 2 * 2, 2 * 10]
    l1 = sum(c * 0.5 * (k + 1) for k, c in enumerate(n))
    l2 = sum(c * (0.5 * (k + 1)) ** 2 for k, c in enumerate(n))
    first = n[0] * 0.25
    assert weight_penalty(model, l1=0.1).item() == pytest.approx(0.1 * l1)
    assert weight_penalty(model, l2=0.01).item() == pytest.approx(0.01 * l2)
    assert weight_penalty(model, l2_first=0.2).item() == pytest.approx(0.2 * first)
    both = weight_penalty(model, l1=0.1, l2=0.01).item()
    assert both == pytest.approx(0.1 * l1 + 0.01 * l2)
    assert weight_penalty(model).item() == 0.0
