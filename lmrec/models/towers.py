"""User towers and history windows for LMRanker.

A user tower maps the representations of a user's history ``(B, L, d)`` with a validity mask
``(B, L)`` (right-aligned: the most recent item in the last column) to one vector ``(B, d)``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from lmrec.data.interactions import Interactions


class MeanTower(nn.Module):
    """Masked mean of the history representations."""

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


class AttentionTower(nn.Module):
    """Additive attention pooling: a_j ∝ exp(wᵀ tanh(W h_j)), output Σ a_j h_j."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.key = nn.Linear(dim, dim)
        self.query = nn.Linear(dim, 1, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.query(torch.tanh(self.key(h))).squeeze(-1)  # (B, L)
        logits = logits.masked_fill(~mask, -1e9)
        weights = torch.softmax(logits, dim=1) * mask  # rows with no history get all-zero weights
        return (weights.unsqueeze(-1) * h).sum(1)


class SequenceTower(nn.Module):
    """A small causal Transformer over the time-ordered history; the last position is the user.

    Positions are counted back from the most recent item, so recency has one embedding
    whatever the history length (as in SASRec, Kang & McAuley 2018, with right alignment).
    """

    def __init__(self, dim: int, max_len: int, layers: int = 2, heads: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.heads = heads
        self.position = nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        length = h.shape[1]
        pos = torch.arange(length - 1, -1, -1, device=h.device)  # 0 = most recent
        x = h + self.position(pos)[None]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=h.device), diagonal=1)
        eye = torch.eye(length, dtype=torch.bool, device=h.device)
        # blocked: the future and padding; every position may attend to itself, so padded rows stay
        # finite (an all-blocked row gives NaN, and 0 * NaN would leak into real positions)
        blocked = (causal[None] | ~mask[:, None, :]) & ~eye[None]  # (B, L, L)
        out = self.encoder(x, mask=blocked.repeat_interleave(self.heads, dim=0))
        empty = ~mask.any(1)
        return torch.where(empty[:, None], torch.zeros_like(out[:, -1]), self.norm(out[:, -1]))


TOWERS = {"mean": MeanTower, "attention": AttentionTower, "sequence": SequenceTower}


class TrainingHistories:
    """For each training interaction, the window of the same user's other items (as item indices).

    ``prefix`` windows hold the ``L`` items before the interaction in time (for sequence towers);
    otherwise the window wraps around the user's whole history, so every other item can appear
    and the interaction's own item never does.
    """

    def __init__(self, train: Interactions, length: int) -> None:
        ts = train.timestamps if train.timestamps is not None else np.zeros(len(train), dtype=np.int64)
        order = np.lexsort((np.arange(len(train)), ts, train.users))
        self.items = torch.as_tensor(train.items[order])
        counts = np.bincount(train.users, minlength=train.n_users)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        pos = np.empty(len(train), dtype=np.int64)
        pos[order] = np.arange(len(train))
        self.position = torch.as_tensor(pos)  # row -> position in the flat, time-ordered array
        self.start = torch.as_tensor(starts[train.users])  # row -> its user's first position
        self.count = torch.as_tensor(counts[train.users])  # row -> its user's number of items
        self.length = length

    def window(self, rows: torch.Tensor, prefix: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(items (B, L), mask (B, L)), right-aligned, for training rows."""
        rows = rows.cpu()
        p, s, n = self.position[rows], self.start[rows], self.count[rows]
        back = torch.arange(self.length, 0, -1)  # L, ..., 1 steps back; last column = 1 step back
        if prefix:
            idx = p[:, None] - back[None, :]
            mask = idx >= s[:, None]
        else:
            idx = s[:, None] + (p - s)[:, None].sub(back[None, :]).remainder(n[:, None].clamp(min=1))
            mask = back[None, :] <= (n - 1)[:, None]
        return self.items[idx.clamp(min=0)], mask


def csr_windows(history: sp.csr_matrix, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The last ``length`` items of each CSR row by recency (entry values), right-aligned."""
    items = np.zeros((history.shape[0], length), dtype=np.int64)
    mask = np.zeros((history.shape[0], length), dtype=bool)
    for r in range(history.shape[0]):
        lo, hi = history.indptr[r], history.indptr[r + 1]
        cols, recency = history.indices[lo:hi], history.data[lo:hi]
        keep = cols[np.argsort(recency, kind="stable")][-length:]
        if len(keep):
            items[r, length - len(keep):] = keep
            mask[r, length - len(keep):] = True
    return torch.from_numpy(items), torch.from_numpy(mask)
