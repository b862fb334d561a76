"""Pairwise and listwise ranking losses on ``(pos_scores, neg_scores)``.

``pos`` has shape ``(B,)``, ``neg`` shape ``(B, n_neg)``; each loss returns a scalar mean. Leading
axes are allowed, ``(..., B)`` with ``(..., B, n_neg)`` (one loss per head of a model), and averaged.

>>> import torch
>>> pos, neg = torch.tensor([2.0]), torch.tensor([[0.5, 1.5]])
>>> round(float(LOSSES["hinge"](pos, neg)), 3)   # mean(max(0, 1 - 1.5), max(0, 1 - 0.5))
0.25
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from lmrec.errors import check_choice

Loss = Callable[..., torch.Tensor]


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


LOSSES: dict[str, Loss] = {"bpr": bpr, "hinge": hinge, "softmax": softmax}


def get_loss(name: str, owner: str = "the model") -> Loss:
    """The loss called ``name``; raises ConfigError listing the supported names."""
    check_choice(owner, "loss", name, LOSSES)
    return LOSSES[name]


def make_loss(name: str, owner: str = "the model", *, margin: float = 1.0) -> Loss:
    """The loss ``name`` as a function of ``(pos, neg)`` only, with the hinge margin bound in."""
    fn = get_loss(name, owner)
    if name == "hinge":
        return lambda pos, neg: hinge(pos, neg, margin=margin)
    return fn
