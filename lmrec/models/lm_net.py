"""The LMRanker network: item tower, user tower, optional graph propagation, ID embeddings.

Shapes: T = text embedding size (384 for MiniLM), d = model dimension, N items, U users.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from lmrec.models.graph import propagate
from lmrec.models.towers import TOWERS, SequenceTower
from lmrec.sparse import csr_product


class LMNet(nn.Module):
    """Item reps  v_i = P(e_i) [+ id_i]  (then optionally smoothed over the graph);
    user reps  u = tower(h_{history}) [+ Q(e_user)] [+ id_u];  score = u·v or cos(u, v)/τ, where an
    item in a history reads  h_j = v_j [+ hid_j]  (``history_ids``: its own ID part in that role).
    """

    def __init__(self, text_emb: torch.Tensor, user_text_emb: torch.Tensor | None, n_users: int, *, dim: int,
                 projection: str, user_tower: str, max_history: int, item_ids: bool, user_ids: bool,
                 history_ids: bool = False, dropout: float = 0.1) -> None:
        super().__init__()
        t = text_emb.shape[1]
        self.register_buffer("text_emb", text_emb)  # (N, T), frozen LM embeddings
        if projection == "linear":
            self.item_proj: nn.Module = nn.Linear(t, dim)
        else:
            self.item_proj = nn.Sequential(nn.Linear(t, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.user_proj = nn.Linear(t, dim) if user_text_emb is not None else None
        if user_text_emb is not None:
            self.register_buffer("user_text_emb", user_text_emb)  # (U, T)
        self.tower = SequenceTower(dim, max_history, dropout=dropout) if user_tower == "sequence" else (
            TOWERS[user_tower](dim) if user_tower == "attention" else TOWERS[user_tower]())
        self.item_id = nn.Embedding(text_emb.shape[0], dim) if item_ids else None
        self.user_id = nn.Embedding(n_users, dim) if user_ids else None
        self.history_id = nn.Embedding(text_emb.shape[0], dim) if history_ids else None
        for emb in (self.item_id, self.user_id, self.history_id):
            if emb is not None:
                nn.init.zeros_(emb.weight)  # an item never trained keeps a zero ID part: text alone

    def item_reps(self, adj: tuple[torch.Tensor, torch.Tensor] | None, layers: int) -> torch.Tensor:
        """(N, d) item representations; with ``layers`` > 0, v + mean of K propagated layers."""
        v = self.item_proj(self.text_emb)
        if self.item_id is not None:
            v = v + self.item_id.weight
        if adj is None or layers == 0:
            return v
        users0 = torch.zeros(adj[0].shape[0], v.shape[1], device=v.device, dtype=v.dtype)
        if self.user_proj is not None:
            users0 = self.user_proj(self.user_text_emb)
        _, smoothed = propagate(adj, users0, v, layers, users_out=False)  # mean of layers 0..K
        # rescale so the propagated part is the mean of layers 1..K added to v: a cold item
        # (no edges) keeps exactly its text representation
        return v + (smoothed * (layers + 1) - v) / layers

    def history_reps(self, v: torch.Tensor) -> torch.Tensor:
        """(N, d) items as a user tower reads them in a history: ``v`` plus the history ID part."""
        return v if self.history_id is None else v + self.history_id.weight

    def user_reps(self, v: torch.Tensor, hist_items: torch.Tensor, mask: torch.Tensor,
                  users: torch.Tensor | None, extra: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d) users from their history windows; ``extra`` (B, d) joins as the most recent item."""
        h = v[hist_items]  # (B, L, d)
        if extra is not None:
            h = torch.cat([h[:, 1:], extra[:, None]], dim=1)
            mask = torch.cat([mask[:, 1:], torch.ones_like(mask[:, :1])], dim=1)
        return self._add_user_parts(self.tower(h, mask), users)

    def shared_user_reps(self, v: torch.Tensor, hist_items: torch.Tensor, mask: torch.Tensor, take: torch.Tensor,
                         users: torch.Tensor) -> torch.Tensor:
        """(B, d) users from shared causal windows (:meth:`TrainingHistories.shared_windows`)."""
        return self._add_user_parts(self.tower.states_at(v[hist_items], mask, take), users)

    def mean_user_reps(self, v: torch.Tensor, history: sp.csr_matrix, users: torch.Tensor | None,
                       minus: torch.Tensor | None = None) -> torch.Tensor:
        """Mean tower through a binary (B, N) history: exact over the whole history.

        ``minus`` (B,) removes one item from each row's mean where the row has it (the training
        positive itself, unless history dropout took it out already).
        """
        total, count = self.history_sums(v, history)
        if minus is not None:
            total, count = self.leave_out(v, history, total, count, np.arange(len(minus)), minus)
        return self.mean_from_sums(total, count, users)

    def mean_from_sums(self, total: torch.Tensor, count: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        """(B, d) mean-tower users from history sums (B, d) and counts (B,); an empty history gives zeros."""
        return self._add_user_parts(total / count.clamp(min=1).unsqueeze(1), users)

    @staticmethod
    def history_sums(v: torch.Tensor, history: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
        """(sums (B, d), counts (B,)) of the item representations in each row of a binary (B, N) history."""
        return csr_product(history, v), torch.as_tensor(np.diff(history.indptr), dtype=v.dtype, device=v.device)

    @staticmethod
    def leave_out(v: torch.Tensor, history: sp.csr_matrix, total: torch.Tensor, count: torch.Tensor,
                  rows: np.ndarray, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """History sums and counts of ``rows`` (B,) of a binary history, each without its item
        ``items`` (B,) where that row has it: (sums (B, d), counts (B,))."""
        # copies: scipy indexing needs writeable arrays, and arrays from tensors are not
        there = np.asarray(history[np.array(rows), items.cpu().numpy().copy()], dtype=np.float32).reshape(-1)
        there_t = torch.as_tensor(there, dtype=v.dtype, device=v.device)
        at = torch.as_tensor(rows, device=v.device)
        return total[at] - there_t[:, None] * v[items], count[at] - there_t

    def _add_user_parts(self, u: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        """Add the projected user text and the user ID embedding (known users only)."""
        if users is not None and self.user_proj is not None:
            u = u + self.user_proj(self.user_text_emb[users])
        if users is not None and self.user_id is not None:
            u = u + self.user_id(users)
        return u
