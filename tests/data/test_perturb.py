"""Perturbations: deterministic for a seed, and each changes exactly what it says."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.data.interactions import Interactions
from lmrec.data.perturb import add_false_positives, corrupt_ratings, drop_interactions, inject_fake_users
from lmrec.errors import ConfigError


@pytest.fixture(scope="module")
def data() -> Interactions:
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame({"user": rng.integers(0, 200, n), "item": rng.zipf(1.6, n) % 300,
                          "rating": rng.integers(1, 6, n).astype(float), "timestamp": rng.integers(0, 10_000, n)})
    frame = frame.drop_duplicates(["user", "item"])
    return Interactions.from_frame(frame)


def pairs(d: Interactions) -> np.ndarray:
    return d.users * d.n_items + d.items


def same(a, b) -> None:
    for key in ("users", "items", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(a.data, key), getattr(b.data, key))


def test_false_positives_add_exactly_new_distinct_pairs(data):
    out = add_false_positives(data, 0.2, seed=1)
    assert out.added.sum() == round(0.2 * len(data)) and len(out.data) == len(data) + out.added.sum()
    np.testing.assert_array_equal(pairs(out.data)[~out.added], pairs(data))  # old rows untouched, in order
    new = pairs(out.data)[out.added]
    assert len(np.unique(new)) == len(new) and not np.isin(new, pairs(data)).any()
    assert set(out.data.users[out.added]) <= set(data.users)
    assert (out.data.timestamps[out.added] >= data.timestamps.min()).all()
    same(out, add_false_positives(data, 0.2, seed=1))
    assert not np.array_equal(pairs(add_false_positives(data, 0.2, seed=2).data), pairs(out.data))


def test_dropping_removes_exactly_the_share(data):
    out = drop_interactions(data, 0.3, seed=4)
    assert out.removed.sum() == round(0.3 * len(data)) == len(data) - len(out.data)
    np.testing.assert_array_equal(pairs(out.data), pairs(data)[~out.removed])
    same(out, drop_interactions(data, 0.3, seed=4))


def test_corrupt_ratings_leave_the_scale_and_nothing_else(data):
    out = corrupt_ratings(data, 0.1, (1, 5), seed=2)
    assert out.changed.sum() == round(0.1 * len(data))
    bad = out.data.ratings[out.changed]
    assert ((bad < 1) | (bad > 5)).all() and (bad < 1).any() and (bad > 5).any()
    np.testing.assert_array_equal(out.data.ratings[~out.changed], data.ratings[~out.changed])
    np.testing.assert_array_equal(pairs(out.data), pairs(data))


@pytest.mark.parametrize("attack", ["random", "average", "bandwagon"])
def test_fake_users_push_the_targets_and_nothing_else(data, attack):
    targets = np.array([data.n_items - 2, data.n_items - 1])  # tail items
    out = inject_fake_users(data, attack, targets, share=0.05, filler=20, seed=3, popular=5)
    n_fake = round(0.05 * data.n_users)
    assert out.fake_users.tolist() == list(range(data.n_users, data.n_users + n_fake))
    assert out.data.n_users == data.n_users + n_fake and out.data.n_items == data.n_items
    np.testing.assert_array_equal(pairs(out.data)[~out.added] // out.data.n_items, data.users)
    fake = out.data.subset(out.added)
    assert set(fake.users) == set(out.fake_users)
    for u in out.fake_users:
        mine = fake.items[fake.users == u]
        assert len(mine) == len(np.unique(mine)) == 2 + 20 + (5 if attack == "bandwagon" else 0)
        assert set(targets) <= set(mine)
        assert (fake.ratings[(fake.users == u) & np.isin(fake.items, targets)] == 5).all()
    if attack == "bandwagon":
        head = np.argsort(-np.bincount(data.items, minlength=data.n_items), kind="stable")
        assert set(head[:5]) <= set(fake.items[fake.users == out.fake_users[0]])
    assert ((fake.ratings >= 1) & (fake.ratings <= 5)).all()
    assert fake.timestamps.min() > data.timestamps.max(), "after the data: a temporal split trains on them"
    assert out.data.user_ids[-1] == data.user_ids.max() + n_fake
    same(out, inject_fake_users(data, attack, targets, share=0.05, filler=20, seed=3, popular=5))


def test_bad_arguments_are_named(data):
    with pytest.raises(ConfigError, match="'share' parameter must be a share in \\[0, 1"):
        drop_interactions(data, 1.5)
    with pytest.raises(ConfigError, match="'attack' parameter of inject_fake_users must be one of"):
        inject_fake_users(data, "sybil", np.array([1]), 0.01)
    with pytest.raises(ConfigError, match="targets must be item indices in \\[0, "):
        inject_fake_users(data, "random", np.array([10_000]), 0.01)
