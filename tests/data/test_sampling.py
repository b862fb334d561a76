"""Negative sampling: shapes, no known positives, popularity weighting, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from lmrec.data.sampling import NegativeSampler
from lmrec.errors import ConfigError


def test_uniform_avoids_positives(tiny_split):
    s = NegativeSampler(tiny_split.train, "uniform", n_negatives=5, seed=0)
    users = np.repeat(np.arange(20), 50)
    neg = s.sample(users)
    assert neg.shape == (1000, 5)
    assert s.is_known(np.broadcast_to(users[:, None], neg.shape), neg).mean() < 0.01


def test_popularity_prefers_popular(data_dir):
    from lmrec.data import get_protocol

    train = get_protocol("P3", data_dir).train
    pop = train.item_popularity()
    users = np.zeros(20000, dtype=np.int64) + 5
    uni = NegativeSampler(train, "uniform", seed=1).sample(users)
    popw = NegativeSampler(train, "popularity", seed=1).sample(users)
    assert pop[popw].mean() > 2 * pop[uni].mean()


def test_deterministic_and_validated(tiny_split):
    a = NegativeSampler(tiny_split.train, seed=7).sample(np.arange(20))
    b = NegativeSampler(tiny_split.train, seed=7).sample(np.arange(20))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="'kind' parameter of NegativeSampler must be one of 'uniform', 'popularity'"):
        NegativeSampler(tiny_split.train, "hard")


def test_known_rows_match_the_training_table_dense_or_not(tiny_split, monkeypatch):
    import lmrec.data.sampling as sampling

    train = tiny_split.train
    users = np.array([3, 0, 3, train.n_users - 1])
    expected = np.zeros((train.n_users, train.n_items), dtype=bool)
    expected[train.users, train.items] = True
    dense = NegativeSampler(train)
    assert dense.dense is not None
    np.testing.assert_array_equal(dense.known_rows(users), expected[users])
    monkeypatch.setattr(sampling, "DENSE_LIMIT", 0)  # the sorted-key path used for large catalogues
    sparse = NegativeSampler(train)
    assert sparse.dense is None
    np.testing.assert_array_equal(sparse.known_rows(users), expected[users])


def test_train_items_pool_never_draws_an_item_without_training_interactions(tiny_split):
    from lmrec.data import Interactions

    train = tiny_split.train
    keep = train.items != 9  # item 9 (piano) now has no training interaction: a cold item
    cold = Interactions(users=train.users[keep], items=train.items[keep], ratings=train.ratings[keep],
                        timestamps=train.timestamps[keep], user_ids=train.user_ids, item_ids=train.item_ids,
                        item_table=train.item_table, name="cold")
    drawn = NegativeSampler(cold, "uniform", n_negatives=50, seed=0, pool="train-items").sample(np.arange(20))
    assert 9 not in drawn and set(np.unique(drawn)) <= set(range(9))
    assert 9 in NegativeSampler(cold, "uniform", n_negatives=50, seed=0).sample(np.arange(20)), "the default pool has it"
    with pytest.raises(ConfigError, match="'pool' parameter of NegativeSampler must be one of 'all-items', "
                                          "'train-items'"):
        NegativeSampler(cold, pool="warm")
