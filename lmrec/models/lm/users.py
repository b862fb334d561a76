"""User towers: a user as a vector from the representations of the items in their history.

Three towers, each an options part that owns its settings (history limit, dropout, batching)
and builds its module:

* :class:`MeanUser` -- the mean of the whole history (exact, through a sparse product);
* :class:`AttentionUser` -- additive attention over the last ``max_history`` items;
* :class:`SequenceUser` -- a causal Transformer over the last ``max_history`` items in time order.

Every tower adds, for users known at training time, the projected user text (when the data has
user attributes) and optionally a learned user ID embedding. ``h`` below is ``(N, d)``: every
item as a history reads it (:meth:`ItemTowerModule.history`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from lmrec.data.interactions import Interactions
from lmrec.models.lm.items import zero_embedding
from lmrec.models.lm.pooling import AttentionPool, CausalTransformer
from lmrec.models.lm.windows import TrainingHistories, csr_windows
from lmrec.options import Options
from lmrec.sparse import csr_product


@dataclass
class UserTower(Options):
    """Settings every tower has. ids: a learned embedding per training user, added to the output."""

    ids: bool = False

    @property
    def grouped_batches(self) -> bool:
        """Whether training batches must hold each user's rows together."""
        return False

    def build(self, dim: int, n_users: int, user_text: torch.Tensor | None) -> UserTowerModule:
        raise NotImplementedError


@dataclass
class MeanUser(UserTower):
    """u = mean of h_j over the whole history.

    history_dropout: in training, each item of a history is left out with this probability, a
        fresh draw each step (a denoising regulariser; scoring reads the whole history).

    With ``negatives=Unseen(per_user=True)`` the catalogue is scored once per user of a batch
    (:meth:`MeanUserModule.catalogue_users`).
    """

    kind = "mean"
    history_dropout: float = 0.0

    def validate(self) -> None:
        self.check_range("history_dropout", 0.0, 1.0)

    def build(self, dim: int, n_users: int, user_text: torch.Tensor | None) -> MeanUserModule:
        return MeanUserModule(self, dim, n_users, user_text)


@dataclass
class AttentionUser(UserTower):
    """u = attention-weighted sum of the last ``max_history`` items."""

    kind = "attention"
    max_history: int = 50

    def validate(self) -> None:
        self.check_range("max_history", 1)

    def build(self, dim: int, n_users: int, user_text: torch.Tensor | None) -> WindowUserModule:
        return WindowUserModule(self, dim, n_users, user_text, AttentionPool(dim), self.max_history)


@dataclass
class SequenceUser(UserTower):
    """u = the last state of a causal Transformer over the last ``max_history`` items in time order;
    trained on every position of a user's window at once (batches hold whole users)."""

    kind = "sequence"
    max_history: int = 50
    layers: int = 2
    heads: int = 2
    dropout: float = 0.1

    def validate(self) -> None:
        for name in ("max_history", "layers", "heads"):
            self.check_range(name, 1)
        self.check_range("dropout", 0.0, 1.0)

    @property
    def grouped_batches(self) -> bool:
        return True

    def build(self, dim: int, n_users: int, user_text: torch.Tensor | None) -> WindowUserModule:
        net = CausalTransformer(dim, self.max_history, self.layers, self.heads, self.dropout)
        return WindowUserModule(self, dim, n_users, user_text, net, self.max_history)


USER_TOWERS: dict[str, type[UserTower]] = {"mean": MeanUser, "attention": AttentionUser, "sequence": SequenceUser}


class UserTowerModule(nn.Module):
    """Shared by every tower: the user text projection and user IDs, and the training data."""

    def __init__(self, dim: int, n_users: int, user_text: torch.Tensor | None, ids: bool) -> None:
        super().__init__()
        self.user_proj = nn.Linear(user_text.shape[1], dim) if user_text is not None else None
        if user_text is not None:
            self.register_buffer("user_text_emb", user_text)  # (U, T)
        self.user_id = zero_embedding(n_users, dim) if ids else None
        self.row_users = torch.zeros(0, dtype=torch.long)  # training row -> user (set by prepare)

    def prepare(self, train: Interactions, seed: int) -> None:
        """Keep what training steps read (not saved: a loaded model only scores)."""
        self.row_users = torch.as_tensor(train.users)

    def finish(self, u: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        """Add the projected user text and the user ID embedding (known users only)."""
        if users is not None and self.user_proj is not None:
            u = u + self.user_proj(self.user_text_emb[users.to(self.user_text_emb.device)])
        if users is not None and self.user_id is not None:
            u = u + self.user_id(users.to(self.user_id.weight.device))
        return u

    def layer0(self) -> torch.Tensor | None:
        """(U, d) the users' own part for graph propagation (their projected text), or None."""
        return None if self.user_proj is None else self.user_proj(self.user_text_emb)

    def train_users(self, h: torch.Tensor, rows: np.ndarray, pos: torch.Tensor) -> torch.Tensor:
        """(B, d) the users of training rows ``rows``, each without its positive ``pos`` in view."""
        raise NotImplementedError

    def score_users(self, h: torch.Tensor, history: sp.csr_matrix, users: torch.Tensor | None,
                    extra: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d) users from history rows (entries: recency); ``extra`` (B, d) reads as one more,
        most recent, item (a profile text); ``users`` None for users unknown at training."""
        raise NotImplementedError


class MeanUserModule(UserTowerModule):
    def __init__(self, options: MeanUser, dim: int, n_users: int, user_text: torch.Tensor | None) -> None:
        super().__init__(dim, n_users, user_text, options.ids)
        self.dropout = options.history_dropout
        self.binary = sp.csr_matrix((n_users, 0), dtype=np.float32)
        self.rng = np.random.default_rng(0)

    def prepare(self, train: Interactions, seed: int) -> None:
        super().prepare(train, seed)
        self.binary = train.to_csr()
        self.rng = np.random.default_rng(seed)

    def training_rows(self, users: np.ndarray) -> sp.csr_matrix:
        """The binary training histories of ``users`` as a training step reads them: with history
        dropout p, each item left out with probability p."""
        rows = self.binary[users]
        if self.dropout and self.training:
            rows.data = (self.rng.random(rows.nnz) >= self.dropout).astype(rows.dtype)
            rows.eliminate_zeros()
        return rows

    def train_users(self, h: torch.Tensor, rows: np.ndarray, pos: torch.Tensor) -> torch.Tensor:
        users = self.row_users[rows]
        history = self.training_rows(users.numpy())
        total, count = history_sums(h, history)
        total, count = leave_out(h, history, total, count, np.arange(len(rows)), pos)
        return self.finish(total / count.clamp(min=1).unsqueeze(1), users)

    def catalogue_users(self, h: torch.Tensor, group_users: np.ndarray, group: np.ndarray,
                        pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For per-user catalogue negatives: (users of the positives, each without it (B, d); the batch's
        distinct users ``group_users`` on their whole training history (G, d)); row b belongs to
        ``group_users[group[b]]``."""
        history = self.training_rows(group_users)
        total, count = history_sums(h, history)
        users = torch.as_tensor(group_users)
        u_all = self.finish(total / count.clamp(min=1).unsqueeze(1), users)
        t_pos, c_pos = leave_out(h, history, total, count, group, pos)
        return self.finish(t_pos / c_pos.clamp(min=1).unsqueeze(1), users[group]), u_all

    def score_users(self, h: torch.Tensor, history: sp.csr_matrix, users: torch.Tensor | None,
                    extra: torch.Tensor | None = None) -> torch.Tensor:
        binary = history.copy()  # recency values -> 1
        binary.data = np.ones_like(binary.data)
        total, count = history_sums(h, binary)
        if extra is not None:
            total, count = total + extra, count + 1
        return self.finish(total / count.clamp(min=1).unsqueeze(1), users)


class WindowUserModule(UserTowerModule):
    """A tower over the last ``length`` items of a history (attention or causal Transformer)."""

    def __init__(self, options: AttentionUser | SequenceUser, dim: int, n_users: int, user_text: torch.Tensor | None,
                 net: nn.Module, length: int) -> None:
        super().__init__(dim, n_users, user_text, options.ids)
        self.net, self.length = net, length
        self.causal = isinstance(net, CausalTransformer)
        self.histories: TrainingHistories | None = None

    def prepare(self, train: Interactions, seed: int) -> None:
        super().prepare(train, seed)
        self.histories = TrainingHistories(train, self.length)

    def train_users(self, h: torch.Tensor, rows: np.ndarray, pos: torch.Tensor) -> torch.Tensor:
        assert self.histories is not None, "prepare(train) first"
        index = torch.as_tensor(rows)
        users = self.row_users[index]
        if self.causal:  # one window per user of the batch serves all of that user's rows
            items, mask, take = self.histories.shared_windows(index)
            u = self.net.states_at(h[items.to(h.device)], mask.to(h.device), take.to(h.device))
        else:  # the user's other items, around the row (order-free)
            items, mask = self.histories.window(index, prefix=False)
            u = self.net(h[items.to(h.device)], mask.to(h.device))
        return self.finish(u, users)

    def score_users(self, h: torch.Tensor, history: sp.csr_matrix, users: torch.Tensor | None,
                    extra: torch.Tensor | None = None) -> torch.Tensor:
        items, mask = csr_windows(history, self.length)
        hh, mask = h[items.to(h.device)], mask.to(h.device)  # (B, L, d)
        if extra is not None:  # the profile joins as the most recent item
            hh = torch.cat([hh[:, 1:], extra[:, None]], dim=1)
            mask = torch.cat([mask[:, 1:], torch.ones_like(mask[:, :1])], dim=1)
        return self.finish(self.net(hh, mask), users)


def history_sums(h: torch.Tensor, history: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """(sums (B, d), counts (B,)) of the item representations in each row of a binary (B, N) history."""
    return csr_product(history, h), torch.as_tensor(np.diff(history.indptr), dtype=h.dtype, device=h.device)


def entries(matrix: sp.csr_matrix, rows: np.ndarray, items: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) ``matrix[rows[b], items[b]]`` as a tensor of ``like``'s dtype and device (0 where absent)."""
    # copies: scipy indexing needs writeable arrays, and arrays from tensors are not
    there = np.asarray(matrix[rows.copy(), items.cpu().numpy().copy()], dtype=np.float32).reshape(-1)
    return torch.as_tensor(there, dtype=like.dtype, device=like.device)


def leave_out(h: torch.Tensor, history: sp.csr_matrix, total: torch.Tensor, count: torch.Tensor,
              rows: np.ndarray, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums and counts of ``rows`` (B,) of a binary history, each without its item ``items`` (B,)
    where that row has it (history dropout may have taken it out already)."""
    there_t = entries(history, np.asarray(rows), items, h)
    at = torch.as_tensor(rows, device=h.device)
    return total[at] - there_t[:, None] * h[items], count[at] - there_t
