"""The item text table of a tuned encoder: a batch's items re-encoded with gradients, the rest read
from a table refreshed from the current weights.

Encoding the whole catalogue with gradients at every step is out of reach (4,385 Amazon texts
take ~30 s to encode once on 2 cores), yet a softmax wants many negatives. So each step encodes
at most ``grad_items`` distinct items of its batch with gradients (the positives first, then
the negatives) and splices them into the (N, T) table; every other item reads the table, which
is re-encoded every ``refresh_every`` steps and before each validation, and takes the batch's
fresh vectors after each step.

The encoder runs without dropout while it is tuned: a step's fresh vectors and the table's must
be the same function of the same weights, or the ranking loss learns to tell them apart (the
positives are the first items encoded fresh) instead of learning the items.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from lmrec.models.lm.text_table import TextTable
from lmrec.text.tuning import TunableEncoder


class TunedTable(TextTable):
    """(N, T) text table with a trainable encoder behind it."""

    def __init__(self, table: torch.Tensor, encoder: TunableEncoder, texts: list[str], seed: int = 0) -> None:
        super().__init__(table)
        self.encoder = encoder
        self.ids, self.mask = encoder.tokenize(texts)  # (N, L) each, on the CPU
        self.grad_items = encoder.options.grad_items
        self.refresh_every = encoder.options.refresh_every
        self.steps = 0
        self.refreshes = {"count": 0, "texts": 0, "seconds": 0.0}  # re-encodings of the whole table
        self.rng = np.random.default_rng(seed)
        self._fresh: tuple[torch.Tensor, torch.Tensor] | None = None

    def train(self, mode: bool = True) -> TunedTable:
        """Training mode for the table (fresh vectors spliced in); the encoder itself stays in eval
        mode, dropout off, so fresh and table vectors agree (see the module's note)."""
        super().train(mode)
        self.encoder.eval()
        return self

    def chosen(self, pos: torch.Tensor, neg: torch.Tensor | None) -> torch.Tensor:
        """Item indices encoded with gradients this step: the batch's distinct positives first,
        then its negatives (a random sample of them when they span the catalogue), at most
        ``grad_items`` in all."""
        first = pd_unique(pos.cpu().numpy())
        if len(first) >= self.grad_items:
            return torch.as_tensor(first[: self.grad_items])
        rest = np.zeros(0, dtype=np.int64)
        if neg is not None:
            flat = neg.reshape(-1).cpu().numpy()
            rest = self.rng.permutation(self.table.shape[0]) if len(flat) > 8 * self.table.shape[0] else pd_unique(flat)
            rest = rest[~np.isin(rest, first)]
        return torch.as_tensor(np.concatenate([first, rest])[: self.grad_items])

    def training_table(self, pos: torch.Tensor, neg: torch.Tensor | None) -> torch.Tensor:
        if not self.training:
            return self.table
        index = self.chosen(pos, neg)
        fresh = self.encoder(self.ids[index], self.mask[index]).to(self.table.dtype)  # (k, T), with gradients
        self._fresh = (index, fresh.detach())
        return self.table.index_copy(0, index.to(self.table.device), fresh.to(self.table.device))

    def after_update(self) -> None:
        """Keep the step's fresh vectors; re-encode the whole table every ``refresh_every`` steps."""
        if self._fresh is not None:
            index, fresh = self._fresh
            self.table[index.to(self.table.device)] = fresh.to(self.table.device)
            self._fresh = None
        self.steps += 1
        if self.refresh_every and self.steps % self.refresh_every == 0:
            self.refresh()

    def refresh(self) -> None:
        start = time.perf_counter()
        self.table = self.encoder.encode(self.ids, self.mask).to(self.table.device, self.table.dtype)
        self.refreshes["count"] += 1
        self.refreshes["texts"] += len(self.ids)
        self.refreshes["seconds"] += time.perf_counter() - start

    def param_groups(self, lr: float | None) -> list[dict[str, Any]]:
        """The encoder's weights without weight decay (decay would pull pretrained weights to zero)."""
        group: dict[str, Any] = {"params": self.encoder.trainable_parameters(), "weight_decay": 0.0}
        if lr is not None:
            group["lr"] = lr
        return [group]

    def put(self, index: torch.Tensor, vectors: torch.Tensor) -> None:
        raise RuntimeError("a tuned table grows through the fitted model's frozen table (after training)")


def pd_unique(values: np.ndarray) -> np.ndarray:
    """Distinct values in order of first appearance."""
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]
