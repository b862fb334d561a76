"""Capabilities a model declares by inheriting them, so callers ask ``isinstance``, never ``hasattr``.

Every model follows :class:`lmrec.models.base.Recommender`. Some can do more, and say so here:

* :class:`Factorised` -- scores are a dot product of user and item factors, so serving can rank
  from a vector index;
* :class:`NewUsers` -- a new user, from liked items and/or a profile text, becomes a vector in
  the factor space (text models read the profile);
* :class:`AddsItems` -- new items with text are rankable at once, without retraining;
* :class:`ItemText` -- the item table the model reads text from (titles for pages and reports);
* :class:`ExplainsFields` -- how much each text field of an item adds to its score;
* :class:`AttributesHistory` -- an exact split of a score into one part per history item.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from lmrec.models.text_side import TextSide


class Factorised(ABC):
    """scores(users, items) = U[users] @ V[items].T for known users."""

    @abstractmethod
    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(user factors (U, d), item factors (N, d)), CPU float tensors."""

    def item_factors(self) -> torch.Tensor:
        """(N, d) item factors (the item side of :meth:`factors`)."""
        return self.factors()[1]


class NewUsers(Factorised):
    """A new user as a vector ``u`` with scores = item_factors() @ u."""

    @abstractmethod
    def new_user_vector(self, items: Any, profile: str | None = None, *, ids: str = "raw") -> torch.Tensor:
        """(d,) vector of a user who liked ``items`` (raw ids, or indices with ``ids="index"``; oldest
        first) and/or wrote ``profile``."""


class AddsItems(ABC):
    """Items added after training (with their text) are scored like the others."""

    @abstractmethod
    def add_items(self, table: pd.DataFrame, id_column: str = "item", *, ids: str = "raw") -> np.ndarray:
        """Add or update items from a table of raw ids and text fields; returns their raw ids
        (``ids="index"``: their indices)."""


class ItemText(ABC):
    """The model reads item text from a table of fields (title, genres, ...)."""

    @abstractmethod
    def item_table(self) -> pd.DataFrame:
        """One row per item index with the text fields the model reads."""

    @abstractmethod
    def item_text(self, item: int) -> str:
        """The text the encoder read for an item index."""

    def user_table(self) -> pd.DataFrame:
        """One row per user index with the user text fields the model reads (none by default)."""
        return pd.DataFrame()

    def text_side(self) -> TextSide | None:
        """The fitted text side (encoder, templates, cache) when the model reads text through
        one; a server swaps in its own bounded encoder there. None by default."""
        return None


class ExplainsFields(ABC):
    """Leave-one-field-out explanations of an item's score."""

    @abstractmethod
    def field_contributions(self, user_vector: torch.Tensor, item: int) -> tuple[list[str], list[str], list[float]]:
        """(field names, their values, score drop when the field is blanked) for ``item``."""


class AttributesHistory(ABC):
    """Scores that split exactly into one additive part per history item (plus a part of the user's own)."""

    @abstractmethod
    def history_attributions(self, user: int | None, item: int, row: sp.csr_matrix) -> np.ndarray | None:
        """(len(row.indices),) each history item's part of the score of item index ``item`` for
        the history ``row`` (1, N) of user index ``user`` (None: a new user); None when this
        configuration's score has no such split."""
