"""Negative sampling for pairwise training: uniform or popularity-weighted, n per positive.

Sampled items that the user has interacted with are redrawn (a few rounds), so almost no
"negative" is a known positive.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lmrec.data.interactions import Interactions
from lmrec.errors import check_choice, check_positive

SAMPLERS = ("uniform", "popularity")
POOLS = ("all-items", "train-items")
DENSE_LIMIT = 2**27  # users x items cells (128 MB of bools)  # drawn from the catalogue; the loop adds "in-batch" and "hard"


class NegativeSampler:
    """Draw ``n_negatives`` items per (user, positive) pair.

    Parameters
    ----------
    kind: "uniform", or "popularity" (p(i) ∝ count(i) ** alpha).
    alpha: popularity exponent (0.75 as in word2vec).
    rounds: redraws of negatives that hit a training positive.
    pool: "all-items" (the whole catalogue) or "train-items" (items with at least one training
        interaction: an item new at training time, a cold item, is never drawn as a negative).

    Example
    -------
    >>> sampler = NegativeSampler(train, "uniform", n_negatives=4, seed=1)  # doctest: +SKIP
    >>> neg = sampler.sample(users)   # (len(users), 4) item indices
    """

    def __init__(self, train: Interactions, kind: str = "uniform", n_negatives: int = 1, *,
                 alpha: float = 0.75, rounds: int = 10, seed: int = 2026, pool: str = "all-items") -> None:
        check_choice("NegativeSampler", "kind", kind, SAMPLERS)
        check_choice("NegativeSampler", "pool", pool, POOLS)
        check_positive("NegativeSampler", "n_negatives", n_negatives)
        self.kind, self.n_negatives, self.rounds = kind, int(n_negatives), rounds
        self.n_items = train.n_items
        counts = train.item_popularity()
        self.pool = np.flatnonzero(counts > 0) if pool == "train-items" else np.arange(train.n_items)
        self.outside = np.ones(train.n_items, dtype=bool)  # items never drawn: True outside the pool
        self.outside[self.pool] = False
        self.rng = np.random.default_rng(seed)
        self.known = np.unique(train.users * train.n_items + train.items)  # sorted positive keys
        self.dense = None  # a (users, items) bool table when it fits: O(1) lookups instead of binary search
        if train.n_users * train.n_items <= DENSE_LIMIT:
            self.dense = np.zeros((train.n_users, train.n_items), dtype=bool)
            self.dense[train.users, train.items] = True
        if kind == "popularity":
            w = train.item_popularity().astype(np.float64) ** alpha
            self.cdf = np.cumsum(w / w.sum())

    def _draw(self, size: int | tuple[int, ...]) -> np.ndarray:
        if self.kind == "uniform":
            return self.pool[self.rng.integers(0, len(self.pool), size=size)]
        return np.minimum(np.searchsorted(self.cdf, self.rng.random(size)), self.n_items - 1)

    def state(self) -> dict[str, Any]:
        """The random generator's state (JSON-able), for checkpoints."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    def is_known(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self.dense is not None:
            return self.dense[users, items]
        keys = users * self.n_items + items
        pos = np.minimum(np.searchsorted(self.known, keys), len(self.known) - 1)
        return self.known[pos] == keys

    def known_rows(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) bool: True where the user has the item in training."""
        if self.dense is not None:
            return self.dense[users]
        out = np.zeros((len(users), self.n_items), dtype=bool)
        starts = np.searchsorted(self.known, users * self.n_items)  # each user's run of sorted keys
        lengths = np.searchsorted(self.known, (users + 1) * self.n_items) - starts
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        keys = self.known[np.repeat(starts, lengths) + offsets]
        out[np.repeat(np.arange(len(users)), lengths), keys % self.n_items] = True
        return out

    def sample(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_negatives) int64 item indices."""
        neg = self._draw((len(users), self.n_negatives))
        u = np.broadcast_to(users[:, None], neg.shape)
        bad = np.flatnonzero(self.is_known(u, neg))
        flat_u, flat = u.reshape(-1), neg.reshape(-1)  # views: redraws write into neg
        for _ in range(self.rounds):
            if not len(bad):
                break
            flat[bad] = self._draw(len(bad))
            bad = bad[self.is_known(flat_u[bad], flat[bad])]  # only the redrawn entries are checked again
        return neg.astype(np.int64)
