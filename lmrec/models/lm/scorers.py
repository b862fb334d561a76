"""Scorers: how a user vector and an item vector give a score.

Each is a factorisation ``score(u, v) = user_side(u) · item_side(v)``, so a trained model serves
from a vector index of ``item_side`` vectors.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lmrec.options import Options


@dataclass
class Scorer(Options):
    """``pair(u, v)``: users (B, d) against items (B, m, d) -> (B, m), or against (N, d) -> (B, N)."""

    def user_side(self, u: torch.Tensor) -> torch.Tensor:
        return u

    def item_side(self, v: torch.Tensor) -> torch.Tensor:
        return v

    def pair(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        u, v = self.user_side(u), self.item_side(v)
        return torch.einsum("bd,bmd->bm", u, v) if v.dim() == 3 else u @ v.T


@dataclass
class Dot(Scorer):
    """score = u · v (norms count: popular items can grow long vectors)."""

    kind = "dot"


@dataclass
class Cosine(Scorer):
    """score = cos(u, v) / temperature (Chen et al., SimCLR 2020; a low temperature sharpens the softmax)."""

    kind = "cosine"
    temperature: float = 0.1  # τ: scores lie in [-1/τ, 1/τ]

    def validate(self) -> None:
        self.check_range("temperature", 0, low_open=True)

    def user_side(self, u: torch.Tensor) -> torch.Tensor:
        return F.normalize(u, dim=-1) / self.temperature

    def item_side(self, v: torch.Tensor) -> torch.Tensor:
        return F.normalize(v, dim=-1)


SCORERS: dict[str, type[Scorer]] = {"dot": Dot, "cosine": Cosine}
