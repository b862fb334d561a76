"""The one top-k: the rankings of the code it replaced, ties included, for models and for serving."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lmrec.errors import ConfigError
from lmrec.models import MostPopular
from lmrec.ranking import top_k
from lmrec.sparse import mask_seen


def before_recommend(scores: torch.Tensor, seen: sp.csr_matrix | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """What Recommender.recommend did before top_k: seen items to -inf, then torch.topk."""
    scores = scores.clone()
    if seen is not None:
        mask_seen(scores, seen)
    top = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    return top.indices.numpy(), top.values.numpy()


def tied(rows: int, n: int, seed: int) -> torch.Tensor:
    """Scores drawn from three values: most items tie with many others."""
    return torch.randint(0, 3, (rows, n), generator=torch.Generator().manual_seed(seed)).float()


@pytest.mark.parametrize("n, k", [(10, 3), (37, 5), (500, 40), (5000, 100)])
def test_batches_rank_as_before_with_ties(n, k):
    scores = tied(6, n, seed=n)
    assert len(set(scores[0].tolist())) < n, "the case must hold ties"
    seen = sp.random(6, n, density=0.2, format="csr", random_state=n)
    for exclude in (None, seen):
        items, values = top_k(scores, k, exclude)
        old_items, old_values = before_recommend(scores, exclude, k)
        np.testing.assert_array_equal(items, old_items)
        np.testing.assert_array_equal(values, old_values)


def test_a_row_alone_ranks_as_inside_a_batch():
    """Serving ranks one row at a time; the model ranks batches: the same items in the same order."""
    scores = tied(4, 300, seed=1)
    seen = sp.random(4, 300, density=0.3, format="csr", random_state=2)
    batch_items, batch_values = top_k(scores, 20, seen)
    for r in range(4):
        items, values = top_k(scores[r].numpy(), 20, exclude=seen[r].indices)
        np.testing.assert_array_equal(items, batch_items[r])
        np.testing.assert_array_equal(values, batch_values[r])


def test_a_models_recommendations_with_ties_are_unchanged(tiny_split):
    model = MostPopular().fit(tiny_split.train)
    assert len(np.unique(model.popularity_)) < model.n_items_, "popularity must tie for this case"
    users, hist = np.arange(model.n_users_), model.train_matrix_
    for exclude_seen in (True, False):
        items, scores = model.recommend(users, k=6, exclude_seen=exclude_seen, ids="index")
        old_items, old_scores = before_recommend(model.score_batch(users), hist if exclude_seen else None, 6)
        np.testing.assert_array_equal(items, old_items)
        np.testing.assert_array_equal(scores, old_scores)


def before_serving(scores: np.ndarray, k: int, exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """What serving's own top_k did: argpartition, a stable sort, finite scores only."""
    s = np.array(scores, dtype=np.float32)
    if exclude is not None and len(exclude):
        s[exclude] = -np.inf
    k = min(k, len(s))
    top = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
    top = top[np.argsort(-s[top], kind="stable")]
    top = top[np.isfinite(s[top])]
    return top, s[top]


def test_one_row_drops_what_is_not_rankable_as_serving_did():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=50).astype(np.float32)
    for k, exclude in ((10, None), (10, np.array([int(np.argmax(scores)), 3])), (60, np.arange(45))):
        items, values = top_k(scores, k, exclude)
        old_items, old_values = before_serving(scores, k, exclude)
        np.testing.assert_array_equal(items, old_items)
        np.testing.assert_array_equal(values, old_values)
    with_nan = scores.copy()
    with_nan[[0, 1]] = np.nan, -np.inf
    items, _ = top_k(with_nan, 50)
    assert len(items) == 48 and not {0, 1} & set(items.tolist()), "NaN and -inf are not rankable"
    assert np.isnan(with_nan[0]), "the caller's scores are left unchanged"


def test_batches_keep_k_columns_and_nan_ranks_last():
    scores = torch.tensor([[1.0, float("nan"), 3.0, 2.0]])
    items, values = top_k(scores, 4, sp.csr_matrix(np.array([[0, 0, 1, 0]])))
    assert items[0, :2].tolist() == [3, 0] and set(items[0, 2:].tolist()) == {1, 2}
    assert values[0, :2].tolist() == [2.0, 1.0] and np.isneginf(values[0, 2:]).all()
    assert torch.isnan(scores[0, 1]), "the caller's scores are left unchanged"


def test_bad_arguments_are_named():
    with pytest.raises(ConfigError, match="k must be a positive integer; got 0"):
        top_k(np.ones(3), 0)
    with pytest.raises(ConfigError, match=r"takes 'exclude' as a \(2, 3\) sparse matrix .* got ndarray"):
        top_k(torch.ones(2, 3), 1, np.array([0]))
    with pytest.raises(ConfigError, match=r"'exclude' holds item indices outside \[0, 3\)"):
        top_k(np.ones(3), 1, np.array([3]))
    with pytest.raises(ConfigError, match=r"scores of shape \(N,\) or \(B, N\); got \(1, 1, 3\)"):
        top_k(np.ones((1, 1, 3)), 1)
