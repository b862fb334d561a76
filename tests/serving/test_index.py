"""Vector indexes: exact search equals a full sort and the models' own top-k, ties included; HNSW
finds nearly all of the exact top-10."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lmrec.errors import ConfigError
from lmrec.ranking import top_k
from lmrec.serving.index import ExactIndex, HNSWIndex, build_index


def test_exact_matches_sorting_and_excludes():
    rng = np.random.default_rng(0)
    v, q = rng.normal(size=(500, 16)).astype(np.float32), rng.normal(size=16).astype(np.float32)
    idx, scores = ExactIndex(v).search(q, 10, exclude=np.array([int(np.argmax(v @ q))]))
    full = np.argsort(-(v @ q))
    assert idx.tolist() == full[1:11].tolist() and np.all(np.diff(scores) <= 0)


def test_exact_search_lists_ties_as_the_model_does():
    """Item vectors of one dimension with a query of 1: the scores are the vectors, drawn from 3 values."""
    rng = np.random.default_rng(2)
    vectors = rng.integers(0, 3, size=(400, 1)).astype(np.float32)
    seen = np.sort(rng.choice(400, size=60, replace=False))
    items, scores = ExactIndex(vectors).search(np.ones(1, np.float32), 25, exclude=seen)
    row = sp.csr_matrix((np.ones(len(seen)), (np.zeros(len(seen), int), seen)), shape=(1, 400))
    model_items, model_scores = top_k(torch.from_numpy(vectors.T.copy()), 25, row)  # Recommender.recommend's path
    assert items.tolist() == model_items[0].tolist() and scores.tolist() == model_scores[0].tolist()
    assert len(set(scores.tolist())) < 25, "the case must hold ties"


def test_hnsw_recall_and_growth():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(5000, 32)).astype(np.float32)
    hnsw, exact = HNSWIndex(v), ExactIndex(v)
    queries = rng.normal(size=(50, 32)).astype(np.float32)
    recall = np.mean([len(set(hnsw.search(q, 10)[0]) & set(exact.search(q, 10)[0])) / 10 for q in queries])
    assert recall > 0.9
    q = queries[0]
    hnsw.add(q[None] * 10)  # a new item aligned with the query becomes its best
    assert hnsw.search(q, 1)[0].tolist() == [5000] and hnsw.n == 5001
    seen = hnsw.search(q, 3)[0][:2]
    assert not set(hnsw.search(q, 3, exclude=seen)[0]) & set(seen.tolist())


def test_build_index_choices():
    v = np.zeros((10, 4), np.float32)
    assert isinstance(build_index(v), ExactIndex) and isinstance(build_index(v, "hnsw"), HNSWIndex)
    with pytest.raises(ConfigError, match="supported: auto, exact, hnsw"):
        build_index(v, "annoy")
