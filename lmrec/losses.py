"""Pointwise, pairwise and listwise ranking losses on ``(pos_scores, neg_scores)``.

Pointwise losses score each item alone against its label r (+1 for a positive, -1 for a sampled
negative): binary cross-entropy and the literal hinge max(0, 1 - r f). Pairwise losses (BPR, the
hinge on s⁺ - s⁻ with a margin) score a positive against each negative; the listwise softmax
scores it against all of them at once. Every loss sees the same ``(pos, neg)`` scores, so they
compare on the same negatives and budget.

``pos`` has shape ``(B,)``, ``neg`` shape ``(B, n_neg)``; each loss returns a scalar mean. Leading
axes are allowed, ``(..., B)`` with ``(..., B, n_neg)``, and averaged. A loss is a small options
class (it owns its settings, such as the hinge margin, and saves them) that is called on the
scores; the plain functions below are the formulas.

>>> import torch
>>> pos, neg = torch.tensor([2.0]), torch.tensor([[0.5, 1.5]])
>>> round(float(Hinge()(pos, neg)), 3)   # mean(max(0, 1 - 1.5), max(0, 1 - 0.5))
0.25
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lmrec.errors import check_choice
from lmrec.options import Options


def bpr(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Bayesian Personalized Ranking: mean of -log sigmoid(s_pos - s_neg).

    Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.
    """
    return -F.logsigmoid(pos[..., None] - neg).mean()


def hinge(pos: torch.Tensor, neg: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Pairwise hinge: mean of max(0, margin - (s_pos - s_neg)); margin 1 by default."""
    return F.relu(margin - (pos[..., None] - neg)).mean()


def softmax(pos: torch.Tensor, neg: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Sampled softmax / InfoNCE: -log( e^{s_pos/τ} / (e^{s_pos/τ} + Σ e^{s_neg/τ}) ).

    Oord et al., "Representation Learning with Contrastive Predictive Coding", 2018.
    """
    logits = torch.cat([pos[..., None], neg], dim=-1) / temperature
    return -F.log_softmax(logits, dim=-1)[..., 0].mean()


def pointwise_bce(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with labels 1 (positive) and 0 (each negative): -log σ(s⁺) - mean log(1 - σ(s⁻)).

    He et al., "Neural Collaborative Filtering", WWW 2017 (the log loss of NCF).
    """
    return (-F.logsigmoid(pos) - F.logsigmoid(-neg).mean(-1)).mean()


def pointwise_hinge(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """The hinge on single items, max(0, 1 - r f) with r = +1 for the positive and -1 for each
    negative: max(0, 1 - s⁺) + mean max(0, 1 + s⁻)."""
    return (F.relu(1 - pos) + F.relu(1 + neg).mean(-1)).mean()


@dataclass
class Loss(Options):
    """A ranking loss: ``loss(pos (..., B), neg (..., B, m)) -> scalar``."""

    def __call__(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class BPR(Loss):
    """-log σ(s⁺ - s⁻), averaged over pairs (:func:`bpr`)."""

    kind = "bpr"

    def __call__(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        return bpr(pos, neg)


@dataclass
class Hinge(Loss):
    """max(0, margin - (s⁺ - s⁻)), averaged over pairs (:func:`hinge`)."""

    kind = "hinge"
    margin: float = 1.0  # the score gap a positive must keep over each negative

    def validate(self) -> None:
        self.check_range("margin", 0, low_open=True)

    def __call__(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        return hinge(pos, neg, self.margin)


@dataclass
class Softmax(Loss):
    """Cross-entropy of the positive against its negatives (:func:`softmax`); the scorer's
    temperature scales the logits, so the loss has none of its own."""

    kind = "softmax"

    def __call__(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        return softmax(pos, neg)


@dataclass
class PointwiseBCE(Loss):
    """Binary cross-entropy on single items (:func:`pointwise_bce`)."""

    kind = "bce"

    def __call__(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        return pointwise_bce(pos, neg)


@dataclass
class PointwiseHinge(Loss):
    """max(0, 1 - r f) on single items, r in {-1, +1} (:func:`pointwise_hinge`)."""

    kind = "pointwise-hinge"

    def __call__(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        return pointwise_hinge(pos, neg)


LOSSES: dict[str, type[Loss]] = {"bpr": BPR, "hinge": Hinge, "softmax": Softmax, "bce": PointwiseBCE,
                                 "pointwise-hinge": PointwiseHinge}


def make_loss(name: str, owner: str = "the model", *, margin: float = 1.0) -> Loss:
    """The loss called ``name`` (the hinge with ``margin``); raises ConfigError listing the names."""
    check_choice(owner, "loss", name, LOSSES)
    loss = Hinge(margin=margin) if name == "hinge" else LOSSES[name]()
    loss.validate()
    return loss
