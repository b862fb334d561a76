"""Losses: formulas on small examples and the registry's errors."""
from __future__ import annotations

import math

import pytest
import torch

from lmrec.errors import ConfigError
from lmrec.losses import LOSSES, get_loss


def test_bpr_formula():
    pos, neg = torch.tensor([1.0]), torch.tensor([[0.0, 2.0]])
    expected = (-math.log(1 / (1 + math.exp(-1))) - math.log(1 / (1 + math.exp(1)))) / 2
    assert LOSSES["bpr"](pos, neg).item() == pytest.approx(expected)


def test_hinge_formula_and_margin():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([[0.5], [0.0]])
    assert LOSSES["hinge"](pos, neg).item() == pytest.approx((0.0 + 1.0) / 2)
    assert LOSSES["hinge"](pos, neg, margin=2.0).item() == pytest.approx((0.5 + 2.0) / 2)


def test_softmax_formula():
    pos, neg = torch.tensor([1.0]), torch.tensor([[0.0, 0.0]])
    assert LOSSES["softmax"](pos, neg).item() == pytest.approx(-math.log(math.e / (math.e + 2)))


def test_losses_decrease_when_positive_wins():
    for fn in LOSSES.values():
        worse = fn(torch.tensor([0.0]), torch.tensor([[1.0]]))
        better = fn(torch.tensor([3.0]), torch.tensor([[1.0]]))
        assert better < worse


def test_unknown_loss():
    with pytest.raises(ConfigError, match="'loss' parameter of X must be one of 'bpr', 'hinge', 'softmax'; got 'mse'"):
        get_loss("mse", "X")
