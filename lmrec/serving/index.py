"""Vector indexes that rank items for a user vector: exact search, or HNSW (faiss) for big catalogues.

Scores are inner products ``V @ u`` (a model's :meth:`~lmrec.models.base.Recommender.factors`).
Seen items are excluded by over-fetching ``k + len(excluded)`` and filtering, so the exact index
returns exactly the model's top-k; HNSW returns an approximation whose recall@10 against exact
is measured in ``benchmarks/serving.py``.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from lmrec.errors import ConfigError


class VectorIndex(Protocol):
    n: int

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (item indices, scores) for one query vector (d,), best first, ``exclude`` removed."""

    def add(self, vectors: np.ndarray) -> None:
        """Append item vectors (m, d); they get the next indices."""

    def update(self, index: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the vectors of existing items."""

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Exact scores (n,) of every item for one query vector."""


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indices, scores) of the ``k`` best finite scores, best first; ``exclude`` set to -inf first."""
    s = np.array(scores, dtype=np.float32)
    if exclude is not None and len(exclude):
        s[exclude] = -np.inf
    k = min(k, len(s))
    top = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
    top = top[np.argsort(-s[top], kind="stable")]
    top = top[np.isfinite(s[top])]
    return top, s[top]


class ExactIndex:
    """Brute force: one matrix-vector product over all items (fast up to ~10^5 items)."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    @property
    def n(self) -> int:
        return len(self.vectors)

    def scores(self, query: np.ndarray) -> np.ndarray:
        return self.vectors @ np.asarray(query, dtype=np.float32)

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        return top_k(self.scores(query), k, exclude)

    def add(self, vectors: np.ndarray) -> None:
        self.vectors = np.concatenate([self.vectors, np.asarray(vectors, dtype=np.float32)])

    def update(self, index: np.ndarray, vectors: np.ndarray) -> None:
        self.vectors[index] = vectors


class HNSWIndex:
    """faiss HNSW graph over inner products (approximate; ``ef_search`` trades recall for speed)."""

    def __init__(self, vectors: np.ndarray, m: int = 32, ef_construction: int = 80, ef_search: int = 64) -> None:
        import faiss

        self._faiss = faiss
        self.exact = ExactIndex(vectors)  # kept for updates, exact rescoring and rebuilding
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        self._build()

    def _build(self) -> None:
        index = self._faiss.IndexHNSWFlat(self.exact.vectors.shape[1], self.m, self._faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.add(self.exact.vectors)
        index.hnsw.efSearch = self.ef_search
        self.index = index

    @property
    def n(self) -> int:
        return self.exact.n

    def scores(self, query: np.ndarray) -> np.ndarray:
        return self.exact.scores(query)

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        n_ex = 0 if exclude is None else len(exclude)
        fetch = min(self.n, k + n_ex)
        self.index.hnsw.efSearch = max(self.ef_search, fetch)
        scores, items = self.index.search(np.asarray(query, dtype=np.float32)[None], fetch)
        items, scores = items[0], scores[0]
        keep = items >= 0
        if n_ex:
            keep &= ~np.isin(items, exclude)
        return items[keep][:k], scores[keep][:k]

    def add(self, vectors: np.ndarray) -> None:
        self.exact.add(vectors)
        self.index.add(np.asarray(vectors, dtype=np.float32))

    def update(self, index: np.ndarray, vectors: np.ndarray) -> None:
        self.exact.update(index, vectors)
        self._build()  # HNSW cannot move a node; rebuild (rare: item text edits)


INDEXES = {"exact": ExactIndex, "hnsw": HNSWIndex}
AUTO_HNSW_FROM = 200_000  # exact search takes ~10 ms per query from about here on 2 cores


def build_index(vectors: np.ndarray, kind: str = "auto") -> VectorIndex:
    """``"exact"``, ``"hnsw"``, or ``"auto"`` (HNSW from 200,000 items on)."""
    if kind == "auto":
        kind = "hnsw" if len(vectors) >= AUTO_HNSW_FROM else "exact"
    if kind not in INDEXES:
        raise ConfigError(f"Unknown index {kind!r}; supported: auto, {', '.join(INDEXES)}.")
    return INDEXES[kind](vectors)
