"""Vector indexes that rank items for a user vector: exact search, or HNSW (faiss) for big catalogues.

Scores are inner products ``V @ u`` (a model's :meth:`~lmrec.models.base.Recommender.factors`).
The exact index ranks with the models' own :func:`~lmrec.ranking.top_k`, so it returns
exactly the model's top-k, ties in the same order; the faiss indexes exclude seen items by
over-fetching ``k + len(excluded)`` and filtering. HNSW returns an approximation whose recall@10
against exact is measured in ``benchmarks/serving.py``.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from lmrec.errors import ConfigError
from lmrec.extras import require
from lmrec.ranking import top_k

__all__ = ["ExactIndex", "HNSWIndex", "ProjectedIndex", "QuantizedIndex", "VectorIndex", "build_index", "top_k"]


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

    # defaults from benchmarks/results/scale.md: on BPR-MF factors of a 1M-item catalogue, efSearch
    # 256 gave recall@10 0.955 against exact at 0.58 ms per query (one thread)
    def __init__(self, vectors: np.ndarray, m: int = 32, ef_construction: int = 128, ef_search: int = 256) -> None:
        faiss = require("faiss", "ann", "the HNSW vector index (index 'hnsw', or 'auto' on a large catalogue)")

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


class QuantizedIndex:
    """Exact search over compressed item vectors: float16 (2 bytes a value) or int8 (1 byte, a
    per-dimension range trained on the vectors), faiss's scalar quantiser, inner products."""

    def __init__(self, vectors: np.ndarray, precision: str = "int8") -> None:
        faiss = require("faiss", "ann", f"the compressed vector index (index precision {precision!r})")

        kinds = {"fp16": faiss.ScalarQuantizer.QT_fp16, "int8": faiss.ScalarQuantizer.QT_8bit}
        if precision not in kinds:
            raise ConfigError(f"Unknown index precision {precision!r}; supported: {', '.join(kinds)}.")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.precision, self.dim = precision, vectors.shape[1]
        self.index = faiss.IndexScalarQuantizer(self.dim, kinds[precision], faiss.METRIC_INNER_PRODUCT)
        self.index.train(vectors)
        self.index.add(vectors)

    @property
    def n(self) -> int:
        return int(self.index.ntotal)

    @property
    def nbytes(self) -> int:
        return int(self.index.code_size) * self.n

    def vectors(self) -> np.ndarray:
        """The decoded (approximate) item vectors."""
        return self.index.reconstruct_n(0, self.n)

    def scores(self, query: np.ndarray) -> np.ndarray:
        return self.vectors() @ np.asarray(query, dtype=np.float32)

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        fetch = min(self.n, k + (0 if exclude is None else len(exclude)))
        scores, items = self.index.search(np.asarray(query, dtype=np.float32)[None], fetch)
        keep = items[0] >= 0
        if exclude is not None and len(exclude):
            keep &= ~np.isin(items[0], exclude)
        return items[0][keep][:k], scores[0][keep][:k]

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))  # the trained ranges stay

    def update(self, index: np.ndarray, vectors: np.ndarray) -> None:
        decoded = self.vectors()
        decoded[index] = vectors
        self.__init__(decoded, self.precision)  # type: ignore[misc]  (rare: item text edits)


class ProjectedIndex:
    """Fewer dimensions: item vectors projected on their top ``dims`` principal directions.

    With P (dims, d) from the SVD of the centred item vectors and μ their mean, an item is
    P(v - μ) and a query P u: the score u·v becomes (Pu)·(P(v - μ)) + u·μ, whose last term is the
    same for every item of a query, so rankings keep only what the dropped directions lose.
    """

    def __init__(self, vectors: np.ndarray, dims: int, inner: str = "exact") -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if not 0 < dims <= vectors.shape[1]:
            raise ConfigError(f"index dims must be in [1, {vectors.shape[1]}] (the model's dimension); got {dims}.")
        self.mean = vectors.mean(0)
        _, _, vt = np.linalg.svd(vectors - self.mean, full_matrices=False)
        self.proj = np.ascontiguousarray(vt[:dims].T)  # (d, dims)
        self.inner_kind = inner
        self.inner = build_index(self._items(vectors), inner)

    def _items(self, vectors: np.ndarray) -> np.ndarray:
        return (np.asarray(vectors, dtype=np.float32) - self.mean) @ self.proj

    def _query(self, query: np.ndarray) -> np.ndarray:
        return np.asarray(query, dtype=np.float32) @ self.proj

    @property
    def n(self) -> int:
        return self.inner.n

    def scores(self, query: np.ndarray) -> np.ndarray:
        return self.inner.scores(self._query(query)) + float(np.asarray(query, dtype=np.float32) @ self.mean)

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        items, scores = self.inner.search(self._query(query), k, exclude)
        return items, scores + float(np.asarray(query, dtype=np.float32) @ self.mean)

    def add(self, vectors: np.ndarray) -> None:
        self.inner.add(self._items(vectors))

    def update(self, index: np.ndarray, vectors: np.ndarray) -> None:
        self.inner.update(index, self._items(vectors))


INDEXES = {"exact": ExactIndex, "hnsw": HNSWIndex}
PRECISIONS = ("fp32", "fp16", "int8")
# exact search reads every vector: 29 ms per query for 1M x 64 floats on one thread here
# (benchmarks/results/scale.md), so it passes 2 ms from about 4.5M floats (70,000 items of 64 dims)
AUTO_HNSW_FLOATS = 4_500_000


def build_index(vectors: np.ndarray, kind: str = "auto", *, precision: str = "fp32",
                dims: int | None = None) -> VectorIndex:
    """``"exact"``, ``"hnsw"``, or ``"auto"`` (HNSW once items x dims reach 4.5M, where exact search
    passes 2 ms per query; e.g. 70,000 items of 64 dims); ``precision`` "fp16" or
    "int8" compresses the vectors of an exact index; ``dims`` keeps that many principal directions."""
    if kind == "auto":
        kind = "hnsw" if int(np.prod(np.shape(vectors))) >= AUTO_HNSW_FLOATS else "exact"
    if kind not in INDEXES:
        raise ConfigError(f"Unknown index {kind!r}; supported: auto, {', '.join(INDEXES)}.")
    if precision not in PRECISIONS:
        raise ConfigError(f"Unknown index precision {precision!r}; supported: {', '.join(PRECISIONS)}.")
    if dims is not None:
        return ProjectedIndex(vectors, dims, kind) if precision == "fp32" else \
            _Projected(vectors, dims, precision)
    if precision != "fp32":
        if kind != "exact":
            raise ConfigError(f"index precision {precision!r} compresses an exact index; got index {kind!r}.")
        return QuantizedIndex(vectors, precision)
    return INDEXES[kind](vectors)


class _Projected(ProjectedIndex):
    """Fewer dimensions, then compressed: a ProjectedIndex over a QuantizedIndex."""

    def __init__(self, vectors: np.ndarray, dims: int, precision: str) -> None:
        self.precision = precision
        super().__init__(vectors, dims, "exact")
        self.inner = QuantizedIndex(self._items(vectors), precision)
