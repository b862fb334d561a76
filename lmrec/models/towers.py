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


def _relu(x: torch.Tensor) -> torch.Tensor:
    """ReLU as a plain function: it keeps nn.TransformerEncoder off its inference fast path, which
    returns NaN for per-head float attention masks (torch 2.13, CPU)."""
    return torch.relu(x)


class SequenceTower(nn.Module):
    """A small causal Transformer over the time-ordered history; the last position is the user.

    Order enters as a learned attention bias per head and per distance back in time (how many
    items before the querying position a key lies), in place of SASRec's absolute position
    embeddings (Kang & McAuley 2018): a position's state then depends only on the items up to
    it and how recent they are from there, so the state at any position of a window equals the
    state of a window ending at that position. Training reads every position of a user's
    window at once (as SASRec does) while scoring reads the last, and both see the same thing.
    """

    def __init__(self, dim: int, max_len: int, layers: int = 2, heads: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.heads = heads
        self.max_len = max_len
        self.recency = nn.Embedding(max_len, heads)  # bias of a key 0, 1, ... items back, per head
        nn.init.zeros_(self.recency.weight)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout,
                                           activation=_relu, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, d): the state at the most recent position (zeros for an empty history)."""
        empty = ~mask.any(1)
        last = self.states(h, mask)[:, -1]
        return torch.where(empty[:, None], torch.zeros_like(last), last)

    def states_at(self, h: torch.Tensor, mask: torch.Tensor, take: torch.Tensor) -> torch.Tensor:
        """(B, d): the states that ``take`` picks from the flattened (G * L, d) states of the
        windows (:meth:`TrainingHistories.shared_windows`); zeros where ``take`` is -1."""
        states = self.states(h, mask)
        flat = states.reshape(-1, states.shape[-1])[take.clamp(min=0)]
        return flat * (take >= 0).unsqueeze(1).to(flat.dtype)

    def states(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, d): the state at every position, each reading only itself and the items before it."""
        batch, length = mask.shape
        steps = torch.arange(length, device=h.device)
        back = steps[:, None] - steps[None, :]  # (L, L): how far key j lies before query i
        bias = self.recency(back.clamp(0, self.max_len - 1)).permute(2, 0, 1)  # (heads, L, L)
        # blocked: the future and padding; every position may attend to itself, so padded rows stay
        # finite (an all-blocked row gives NaN, and 0 * NaN would leak into real positions)
        blocked = ((back < 0)[None] | ~mask[:, None, :]) & (back != 0)[None]  # (B, L, L)
        attn = bias[None].masked_fill(blocked[:, None], float("-inf"))  # (B, heads, L, L)
        out = self.encoder(h, mask=attn.reshape(batch * self.heads, length, length).to(h.dtype))
        return self.norm(out)


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

    def shared_windows(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prefix windows shared by the rows of one user, for a causal tower (SASRec-style training).

        One window (the ``L`` items before the user's latest row in the batch) serves every row
        of that user whose previous item lies inside it: a causal tower's state at that item is
        the row's user representation. Returns (items (G, L'), mask (G, L'), take (B,)): row b's
        state is ``states.reshape(G * L', d)[take[b]]``, or none (an empty history) where
        ``take[b]`` is -1. Leading columns that are padding in every window are dropped.
        A row whose full prefix is longer than the part inside the window reads that part only.
        """
        rows = rows.cpu()
        p, s = self.position[rows].numpy(), self.start[rows].numpy()
        ends, window_of = [], np.empty(len(p), dtype=np.int64)
        for b in np.argsort(-p, kind="stable"):  # latest first, so each window ends at its user's latest row
            if not ends or s[b] != s[ends[-1]] or p[b] <= p[ends[-1]] - self.length:
                ends.append(b)
            window_of[b] = len(ends) - 1
        items, mask = self.window(rows[ends], prefix=True)
        column = self.length - 1 - (p[ends][window_of] - p)  # the column of the row's previous item
        cut = int(mask.any(0).int().argmax()) if bool(mask.any()) else self.length - 1  # keep one column
        items, mask, column = items[:, cut:], mask[:, cut:], torch.as_tensor(column - cut)
        take = torch.as_tensor(window_of) * mask.shape[1] + column
        valid = (column >= 0) & mask.reshape(-1)[take.clamp(min=0)]
        return items, mask, torch.where(valid, take, torch.full_like(take, -1))


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
