"""Non-personalised baselines: Random and MostPopular."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.data.interactions import Interactions
from lmrec.models.base import Recommender


class Random(Recommender):
    """Scores are uniform noise, fixed per (seed, user) so recommendations are reproducible.

    Example
    -------
    >>> model = Random(seed=2026).fit(train)  # doctest: +SKIP
    """

    name = "random"
    uses_history = False

    def __init__(self, seed: int = 2026) -> None:
        self.seed = seed

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        pass

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        rows = [np.random.default_rng([self.seed, int(u)]).random(self.n_items_, dtype=np.float32) for u in users]
        return torch.from_numpy(np.stack(rows)) if rows else torch.empty(0, self.n_items_)

    def _item_vectors(self) -> torch.Tensor:
        return torch.from_numpy(np.random.default_rng(self.seed).random((self.n_items_, 8), dtype=np.float32))


class MostPopular(Recommender):
    """Items ranked by their number of training interactions, the same list for everyone."""

    name = "most-popular"
    uses_history = False

    def __init__(self) -> None:
        pass

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        self.popularity_ = train.item_popularity().astype(np.float32)

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return torch.from_numpy(self.popularity_).expand(len(users), -1).clone()

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.popularity_ = arrays["popularity"]
