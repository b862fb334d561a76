"""Pooling networks of the user towers: additive attention and a small causal Transformer.

Each maps the representations of a user's history ``(B, L, d)`` with a validity mask ``(B, L)``
(right-aligned: the most recent item in the last column) to one vector ``(B, d)``.
"""
from __future__ import annotations

import torch
from torch import nn


class AttentionPool(nn.Module):
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


class CausalTransformer(nn.Module):
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
