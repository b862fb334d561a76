"""The item text table of a tuned encoder: a batch's items re-encoded with gradients, the rest read
from a table refreshed from the current weights.

Encoding the whole catalogue with gradients at every step is out of reach (4,385 Amazon texts
take ~30 s to encode once on 2 cores), yet a softmax wants many negatives. So each step encodes
at most ``grad_items`` distinct items of its batch with gradients and the loss reads every item
from the (N, T) table, which is re-encoded every ``refresh_every`` steps and before each
validation, and takes the step's fresh vectors after it.

The fresh vectors reach the loss through their gradient only (a straight-through splice: the
forward value is the table's), and the items encoded fresh are a stratified sample: up to half
the budget from the batch's distinct positives, the rest from its other items, each gradient
scaled by the inverse of its item's chance of being sampled. The encoder's gradient is then an
unbiased estimate of the one over all the items the loss reads. Splicing fresh values in, with
the positives first, let the loss tell fresh vectors from stale ones: the encoder learnt to move
every fresh vector towards the users, a shift that is useless once the whole table is refreshed
(on P2, LoRA fell from the frozen model's validation NDCG@10 0.094 to 0.064). For the same reason
the encoder runs without dropout while it is tuned (its dropouts are zeroed, not switched off by
eval mode: Hugging Face layers checkpoint gradients only in training mode).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from lmrec.models.lm.text_table import TextTable
from lmrec.text.tuning import TunableEncoder, dropout_off


class TunedTable(TextTable):
    """(N, T) text table with a trainable encoder behind it."""

    def __init__(self, table: torch.Tensor, encoder: TunableEncoder, texts: list[str], seed: int = 0) -> None:
        super().__init__(table)
        dropout_off(encoder.model)  # training mode (for checkpointing) then computes what eval mode does
        self.encoder = encoder
        self.ids, self.mask = encoder.tokenize(texts)  # (N, L) each, on the CPU
        self.grad_items = encoder.tuning.grad_items
        self.refresh_every = encoder.tuning.refresh_every
        self.steps = 0
        self.refreshes = {"count": 0, "texts": 0, "seconds": 0.0}  # re-encodings of the whole table
        self.rng = np.random.default_rng(seed)
        self._fresh: tuple[torch.Tensor, torch.Tensor] | None = None

    def chosen(self, pos: torch.Tensor, neg: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(item indices encoded with gradients this step, their gradient weights): a sample of the
        batch's distinct positives (up to half of ``grad_items``, more when the other items are
        few) and of its other items (the negatives; the whole catalogue when they span it), each
        weighted by its stratum's size over its sample's size."""
        first = pd_unique(pos.cpu().numpy())
        others = np.zeros(0, dtype=np.int64)
        if neg is not None:
            flat = neg.reshape(-1).cpu().numpy()
            others = np.arange(self.table.shape[0]) if len(flat) > 8 * self.table.shape[0] else pd_unique(flat)
            others = others[~np.isin(others, first)]
        k_pos = min(len(first), max(self.grad_items - len(others), (self.grad_items + 1) // 2))
        k_neg = min(len(others), self.grad_items - k_pos)
        parts, weights = [], []
        for stratum, k in ((first, k_pos), (others, k_neg)):
            if k:
                parts.append(self.rng.choice(stratum, k, replace=False) if k < len(stratum) else stratum)
                weights.append(np.full(k, len(stratum) / k, dtype=np.float32))
        if not parts:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0)
        return torch.as_tensor(np.concatenate(parts)), torch.as_tensor(np.concatenate(weights))

    @property
    def frozen(self) -> bool:
        return False

    def training_table(self, pos: torch.Tensor, neg: torch.Tensor | None) -> torch.Tensor:
        if not self.training:
            return self.table
        index, weight = self.chosen(pos, neg)
        fresh = self.encoder(self.ids[index], self.mask[index]).to(self.table.dtype)  # (k, T), with gradients
        self._fresh = (index, fresh.detach())
        device = self.table.device
        grad_only = (fresh - fresh.detach()) * weight.to(fresh.device, fresh.dtype)[:, None]  # zero, with gradients
        return self.table.index_add(0, index.to(device), grad_only.to(device))

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
