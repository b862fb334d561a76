"""The synthetic generator: deterministic for a seed, with the structure it promises."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.data.parquet import scan_parquet
from lmrec.data.synthetic import generate, write_parquet
from lmrec.errors import ConfigError


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data():
    a, b = generate(500, 300, 8000, seed=4), generate(500, 300, 8000, seed=4)
    for key in ("users", "items", "timestamps"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    pd.testing.assert_frame_equal(a.item_table, b.item_table)
    assert not np.array_equal(generate(500, 300, 8000, seed=5).items[:200], a.items[:200])


def test_structure_power_laws_taste_clusters_and_text_that_names_the_cluster():
    data = generate(2000, 1000, 60000, n_clusters=20, seed=1)
    pairs = data.users * data.n_items + data.items
    assert len(np.unique(pairs)) == len(data), "no duplicate (user, item) pair"
    assert (np.diff(data.timestamps)[np.diff(data.users) == 0] >= 0).all(), "time increases within a user"
    pop = np.sort(np.bincount(data.items, minlength=data.n_items))[::-1]
    assert pop[:100].sum() > 0.3 * len(data), "the top 10% of items take a large share (power law)"
    activity = np.bincount(data.users, minlength=data.n_users)
    assert activity.min() >= 3 and activity.max() > 10 * np.median(activity), "a few users are very active"
    # the category (named in the title) concentrates a user's items far beyond chance
    category = data.item_table["category"].to_numpy()[data.items]
    top_share = pd.Series(category).groupby(data.users).agg(lambda c: c.value_counts().iloc[0] / len(c))
    assert top_share.mean() > 0.3 > 3 * (1 / data.item_table["category"].nunique())
    assert all(c in t for c, t in zip(data.item_table["category"], data.item_table["title"]))


def test_bad_sizes_are_refused_with_the_parameter():
    with pytest.raises(ConfigError, match="n_interactions >= n_users \\* min_per_user"):
        generate(100, 50, 10)
    with pytest.raises(ConfigError, match="'explore' parameter of SyntheticSpec must be in"):
        generate(10, 10, 100, explore=1.5)


def test_parquet_round_trip_in_small_batches(tmp_path):
    data = generate(300, 200, 5000, seed=2)
    folder = write_parquet(data, tmp_path / "syn", row_group=700)
    back = scan_parquet(folder / "interactions.parquet", timestamp="timestamp",
                        items=pd.read_parquet(folder / "items.parquet"), batch_rows=333, progress=False)
    np.testing.assert_array_equal(back.user_ids, data.user_ids)
    np.testing.assert_array_equal(back.item_ids, data.item_ids)
    for key in ("users", "items", "timestamps"):
        np.testing.assert_array_equal(getattr(back, key), getattr(data, key))
    pd.testing.assert_frame_equal(back.item_table, data.item_table)
