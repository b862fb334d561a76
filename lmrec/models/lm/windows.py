"""History windows: which items a user tower reads, for training rows and for scoring rows.

Windows are right-aligned ``(B, L)`` item indices with a validity mask: the most recent item sits
in the last column.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.data.interactions import Interactions


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
