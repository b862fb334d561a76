"""LMNet: the trained modules of an LMRanker in one torch module (text table, item and user towers).

v = item tower(text table) (N, d); h = v as histories read it; u = user tower(h, ...) (B, d);
scores come from the ranker's scorer. Shapes: N items, U users, T text size, d model size.
"""
from __future__ import annotations

import torch
from torch import nn

from lmrec.models.lm.items import Adjacency, ItemTowerModule
from lmrec.models.lm.text_table import TextTable
from lmrec.models.lm.users import UserTowerModule


class LMNet(nn.Module):
    def __init__(self, text: TextTable, items: ItemTowerModule, users: UserTowerModule) -> None:
        super().__init__()
        self.text, self.items, self.users = text, items, users

    def item_reps(self, adj: Adjacency | None, table: torch.Tensor | None = None) -> torch.Tensor:
        """(N, d) item representations from ``table`` (N, T) (default: the current text table)."""
        return self.items(self.text.table if table is None else table, adj, self.users.layer0())
