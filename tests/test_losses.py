"""Losses: formulas on small examples and the registry's errors."""
from __future__ import annotations

import math

import pytest
import torch

from lmrec.errors import ConfigError
from lmrec.losses import LOSSES, Hinge, bpr, hinge, make_loss, pointwise_bce, pointwise_hinge, softmax
from lmrec.options import resolve


def test_bpr_formula():
    pos, neg = torch.tensor([1.0]), torch.tensor([[0.0, 2.0]])
    expected = (-math.log(1 / (1 + math.exp(-1))) - math.log(1 / (1 + math.exp(1)))) / 2
    assert bpr(pos, neg).item() == pytest.approx(expected)


def test_hinge_formula_and_margin():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([[0.5], [0.0]])
    assert hinge(pos, neg).item() == pytest.approx((0.0 + 1.0) / 2)
    assert Hinge(margin=2.0)(pos, neg).item() == pytest.approx((0.5 + 2.0) / 2)


def test_softmax_formula():
    pos, neg = torch.tensor([1.0]), torch.tensor([[0.0, 0.0]])
    assert softmax(pos, neg).item() == pytest.approx(-math.log(math.e / (math.e + 2)))


def test_pointwise_formulas_label_each_item_alone():
    pos, neg = torch.tensor([0.5, 2.0]), torch.tensor([[-2.0, 0.0], [1.0, 3.0]])
    # literal hinge max(0, 1 - r f): positives r = +1, negatives r = -1, negatives averaged per row
    assert pointwise_hinge(pos, neg).item() == pytest.approx(((0.5 + (0 + 1) / 2) + (0 + (2 + 4) / 2)) / 2)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    row = lambda p, ns: -math.log(sig(p)) - sum(math.log(1 - sig(n)) for n in ns) / len(ns)  # noqa: E731
    assert pointwise_bce(pos, neg).item() == pytest.approx((row(0.5, [-2, 0]) + row(2, [1, 3])) / 2)
    # a pointwise loss changes when every score shifts together; a pairwise one does not
    assert pointwise_bce(pos + 1, neg + 1).item() != pytest.approx(pointwise_bce(pos, neg).item())
    assert bpr(pos + 1, neg + 1).item() == pytest.approx(bpr(pos, neg).item())


def test_losses_decrease_when_positive_wins():
    for kind in LOSSES.values():
        fn = kind()
        worse = fn(torch.tensor([0.0]), torch.tensor([[1.0]]))
        better = fn(torch.tensor([3.0]), torch.tensor([[1.0]]))
        assert better < worse


def test_unknown_loss_and_bad_margin():
    with pytest.raises(ConfigError, match="'loss' parameter of X must be one of 'bpr', 'hinge', 'softmax', 'bce', "
                                          "'pointwise-hinge'; got 'mse'"):
        make_loss("mse", "X")
    with pytest.raises(ConfigError, match="'loss' parameter of LMRanker must be one of 'bpr', 'hinge', 'softmax', "
                                          "'bce', 'pointwise-hinge'; got 'mse'"):
        resolve(LOSSES, {"type": "mse"}, owner="LMRanker", param="loss")
    with pytest.raises(ConfigError, match="'margin' parameter of Hinge must be a number > 0; got -1"):
        make_loss("hinge", margin=-1)


def test_a_loss_saves_and_rebuilds_its_options():
    saved = Hinge(margin=0.3).to_dict()
    assert saved == {"type": "hinge", "margin": 0.3}
    assert resolve(LOSSES, saved, owner="LMRanker", param="loss") == Hinge(margin=0.3)
    with pytest.raises(ConfigError, match=r"Unknown Hinge field\(s\) \['margn'\]; supported: \['margin'\]"):
        resolve(LOSSES, {"type": "hinge", "margn": 0.3}, owner="LMRanker", param="loss")
