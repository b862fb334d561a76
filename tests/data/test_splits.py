"""Splits: protocol counts of PROTOCOLS.md, determinism, leakage checks, save/load."""
from __future__ import annotations

import numpy as np
import pytest

from lmrec.data import (get_protocol, leave_last_out, load_dataset, load_split, random_split, save_split,
                        temporal_split)
from lmrec.data.splits import cold_item_split, global_temporal_split
from lmrec.errors import ArtifactError, ConfigError, DataError, LeakageError


@pytest.fixture(scope="module")
def p1(data_dir):
    return get_protocol("P1", data_dir)


def test_p1_counts(p1):
    assert p1.counts() == {"train": 666764, "valid": 83360, "test": 86354, "users": 6039, "items": 3628}
    assert p1.card()["protocol"] == "ml1m-random" and p1.test_history == "train"


def test_p1_other_seed_differs_but_is_deterministic(data_dir, p1):
    data = load_dataset("ml-100k", data_dir)
    a, b, c = random_split(data, seed=1), random_split(data, seed=1), random_split(data, seed=2)
    np.testing.assert_array_equal(a.test.items, b.test.items)
    assert not np.array_equal(a.test.items, c.test.items)


def test_p2_counts(data_dir):
    s = get_protocol("scientific-loo", data_dir)
    assert (len(s.valid), len(s.test), s.n_users, s.n_items) == (8442, 8442, 8442, 4385)
    assert s.test_history == "train+valid"
    # every training sequence has each item once
    keys = s.train.users * s.n_items + s.train.items
    assert len(np.unique(keys)) == len(keys) == 42356


def test_p3_counts(data_dir):
    s = get_protocol("P3", data_dir)
    n = np.bincount(s.train.users) + np.bincount(s.valid.users, minlength=943) + np.bincount(s.test.users, minlength=943)
    assert np.array_equal(np.bincount(s.train.users), 8 * n // 10)
    assert (len(s.train) + len(s.valid) + len(s.test)) == 100000
    assert s.counts() == {"train": 79619, "valid": 9942, "test": 10439, "users": 943, "items": 1682}


def test_p4_cold_items(data_dir):
    s = get_protocol("P4", data_dir)
    assert len(s.cold_items) == round(0.2 * 4385)
    cold = np.isin(s.test.items, s.cold_items)
    assert cold.all() and not np.isin(s.train.items, s.cold_items).any()


def test_p5_global_cutoff(data_dir):
    s = get_protocol("P5", data_dir)
    assert s.train.timestamps.max() <= s.valid.timestamps.min() <= s.test.timestamps.min()
    n = len(s.train) + len(s.valid) + len(s.test)
    assert n == 487650 and len(s.train) == int(0.8 * n) and s.eval_requires_history


def test_temporal_refuses_without_timestamps(data_dir):
    data = load_dataset("ml-1m", data_dir)
    with pytest.raises(DataError, match="a temporal split needs timestamps, but dataset 'ml-1m' has none"):
        temporal_split(data)
    with pytest.raises(DataError, match="leave-last-out needs timestamps"):
        leave_last_out(data)


def test_leakage_is_detected(data_dir):
    data = load_dataset("ml-100k", data_dir)
    s = random_split(data, seed=3)
    s.check_leakage()
    s.train = s.train.concat(s.test.subset(np.arange(5)))
    with pytest.raises(LeakageError, match="5 user-item pairs of test are also in train"):
        s.check_leakage()
    t = temporal_split(data)
    t.check_leakage()
    t.train, t.test = t.test, t.train
    with pytest.raises(LeakageError, match="older than the same user's latest training interaction"):
        t.check_leakage()
    g = global_temporal_split(data)
    g.check_leakage()
    c = cold_item_split(data, 0.1, seed=1)
    c.check_leakage()
    c.train = c.train.concat(c.test.subset(np.arange(1)))
    with pytest.raises(LeakageError, match="cold items appear in train"):
        c.check_leakage()


def test_ratios_validated(data_dir):
    data = load_dataset("ml-100k", data_dir)
    with pytest.raises(DataError, match="ratios must be three non-negative numbers summing to 1"):
        random_split(data, (0.8, 0.3, 0.1))


def test_save_load_round_trip(p1, tmp_path):
    save_split(p1, tmp_path / "p1")
    back = load_split(tmp_path / "p1")
    assert back.card() == p1.card()
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(back, part).users, getattr(p1, part).users)
        np.testing.assert_array_equal(getattr(back, part).items, getattr(p1, part).items)
    assert back.train.item_table["title"].tolist() == p1.train.item_table["title"].tolist()
    np.testing.assert_array_equal(back.train.user_ids, p1.train.user_ids)


def test_load_refuses_tampered_split(data_dir, tmp_path):
    s = get_protocol("P3", data_dir)
    save_split(s, tmp_path / "s")
    import json

    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    m["card"]["counts"]["test"] += 1
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="test has 10439 interactions but the card says 10440"):
        load_split(tmp_path / "s")
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        load_split(tmp_path)


def test_unknown_protocol(data_dir):
    with pytest.raises(DataError, match=r"unknown protocol 'P9'; supported: ml1m-random \(P1\)"):
        get_protocol("P9", data_dir)


def test_cold_validation_holds_out_warm_items_of_train_only(tiny_split):
    from lmrec.data import cold_item_split, cold_validation

    cold = cold_item_split(tiny_split.train.concat(tiny_split.valid).concat(tiny_split.test), 0.2, seed=1)
    val = cold_validation(cold, 0.25, seed=3)
    assert set(val.cold_items) & set(cold.cold_items) == set(), "the real cold items stay out"
    assert set(np.unique(val.test.items)) <= set(val.cold_items) and len(val.test)
    assert not np.isin(val.train.items, val.cold_items).any() and not np.isin(val.valid.items, val.cold_items).any()
    assert len(val.train) + len(val.test) == len(cold.train), "train's rows are split between train and test"
    assert len(val.valid) == int((~np.isin(cold.valid.items, val.cold_items)).sum()), "valid less pseudo-cold rows"
    assert len(val.test) == int(np.isin(cold.train.items, val.cold_items).sum())
    val.check_leakage()
    with pytest.raises(ConfigError, match="cold_validation needs a cold-start split"):
        cold_validation(tiny_split)
