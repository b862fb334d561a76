"""The item text embeddings an item tower reads: a fixed table for a frozen encoder.

A tuned encoder (``Encoder(tuning=LoRA() | FullTune())``, :mod:`lmrec.models.lm.tuned_table`) keeps the
same table, refreshed from its current weights, and re-encodes a batch's items with gradients.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class TextTable(nn.Module):
    """(N, T) item text embeddings, frozen."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)

    @property
    def frozen(self) -> bool:
        """Whether the table never changes during training (a tuned encoder's does)."""
        return True

    def training_table(self, pos: torch.Tensor, neg: torch.Tensor | None) -> torch.Tensor:
        """(N, T) the table a training step reads; ``pos`` (B,) and ``neg`` (B, m) are the batch's
        items (a tuned table re-encodes some of them with gradients; a frozen one has nothing to do)."""
        return self.table

    def after_update(self) -> None:
        """Called after each optimizer step (a tuned table counts steps to its next refresh)."""

    def refresh(self) -> None:
        """Bring the table up to date with the encoder's weights (frozen: it is)."""

    def param_groups(self, lr: float | None) -> list[dict[str, Any]]:
        """Optimizer groups of the encoder's trainable weights (frozen: none)."""
        return []

    def put(self, index: torch.Tensor, vectors: torch.Tensor) -> None:
        """Write ``vectors`` (k, T) at item indices ``index``; indices >= N append rows in order."""
        n = self.table.shape[0]
        vectors = vectors.to(self.table.device, self.table.dtype)
        old = index < n
        if bool(old.any()):
            self.table[index[old]] = vectors[old]
        if bool((~old).any()):
            self.table = torch.cat([self.table, vectors[~old]])
