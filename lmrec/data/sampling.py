"""Negative sampling for pairwise training: uniform or popularity-weighted, n per positive.

Sampled items that the user has interacted with are redrawn (a few rounds), so almost no
"negative" is a known positive.
"""
from __future__ import annotations

import numpy as np

from lmrec.data.interactions import Interactions
from lmrec.errors import check_choice, check_positive

SAMPLERS = ("uniform", "popularity")  # drawn from the catalogue; the loop adds "in-batch" and "hard"


class NegativeSampler:
    """Draw ``n_negatives`` items per (user, positive) pair.

    Parameters
    ----------
    kind: "uniform", or "popularity" (p(i) ∝ count(i) ** alpha).
    alpha: popularity exponent (0.75 as in word2vec).
    rounds: redraws of negatives that hit a training positive.

    Example
    -------
    >>> sampler = NegativeSampler(train, "uniform", n_negatives=4, seed=1)  # doctest: +SKIP
    >>> neg = sampler.sample(users)   # (len(users), 4) item indices
    """

    def __init__(self, train: Interactions, kind: str = "uniform", n_negatives: int = 1, *,
                 alpha: float = 0.75, rounds: int = 10, seed: int = 2026) -> None:
        check_choice("NegativeSampler", "kind", kind, SAMPLERS)
        check_positive("NegativeSampler", "n_negatives", n_negatives)
        self.kind, self.n_negatives, self.rounds = kind, int(n_negatives), rounds
        self.n_items = train.n_items
        self.rng = np.random.default_rng(seed)
        self.known = np.unique(train.users * train.n_items + train.items)  # sorted positive keys
        if kind == "popularity":
            w = train.item_popularity().astype(np.float64) ** alpha
            self.cdf = np.cumsum(w / w.sum())

    def _draw(self, size: int | tuple[int, ...]) -> np.ndarray:
        if self.kind == "uniform":
            return self.rng.integers(0, self.n_items, size=size)
        return np.minimum(np.searchsorted(self.cdf, self.rng.random(size)), self.n_items - 1)

    def is_known(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        pos = np.minimum(np.searchsorted(self.known, keys), len(self.known) - 1)
        return self.known[pos] == keys

    def sample(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_negatives) int64 item indices."""
        neg = self._draw((len(users), self.n_negatives))
        u = np.broadcast_to(users[:, None], neg.shape)
        for _ in range(self.rounds):
            bad = self.is_known(u, neg)
            if not bad.any():
                break
            neg[bad] = self._draw(int(bad.sum()))
        return neg.astype(np.int64)
