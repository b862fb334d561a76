"""Cleaning: each step, and a report row for every row changed."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.data import CleaningConfig, clean, clean_interactions
from lmrec.errors import ConfigError

FRAME = pd.DataFrame({
    "user": ["a", "a", "a", "b", "b", "c", None],
    "item": ["x", "x", "y", "x", "z", "x", "y"],
    "rating": [4.0, 5.0, 9.0, 2.0, 3.0, 0.0, 4.0],
    "timestamp": [2, 1, 3, 4, 5, 6, 7],
    "line": [2, 3, 4, 5, 6, 7, 8],
})


def test_dedupe_keeps_latest_by_timestamp():
    r = clean(FRAME, CleaningConfig())
    a_x = r.frame[(r.frame.user == "a") & (r.frame.item == "x")]
    assert a_x["rating"].tolist() == [4.0]  # timestamp 2 beats timestamp 1
    dropped = r.report.changes[r.report.changes.reason.str.startswith("duplicate")]
    assert dropped["line"].tolist() == [3]


def test_dedupe_first():
    r = clean(FRAME, CleaningConfig(dedupe="first"))
    assert r.frame[(r.frame.user == "a") & (r.frame.item == "x")]["rating"].tolist() == [5.0]


def test_outliers_drop_and_clip():
    dropped = clean(FRAME, CleaningConfig(rating_scale=(1, 5), outliers="drop"))
    assert sorted(dropped.report.changes.query("action == 'dropped' and reason.str.contains('scale')")["line"]) == [4, 7]
    clipped = clean(FRAME, CleaningConfig(rating_scale=(1, 5), outliers="clip"))
    rows = clipped.report.changes.query("action == 'clipped'").set_index("line")
    assert rows.loc[4, "old"] == 9.0 and rows.loc[4, "new"] == 5.0 and rows.loc[7, "new"] == 1.0
    assert clipped.frame["rating"].between(1, 5).all()


def test_missing_dropped_and_reported():
    r = clean(FRAME, CleaningConfig())
    row = r.report.changes.query("reason == 'missing user'")
    assert row["line"].tolist() == [8]
    assert r.report.summary()["rows_in"] == 7 and r.report.summary()["rows_out"] == len(r.frame) == 5


def test_implicit_threshold_and_kcore():
    r = clean(FRAME, CleaningConfig(rating_scale=(0, 5), implicit_threshold=2, min_user_interactions=2))
    assert (r.frame["rating"] == 1.0).all()
    assert sorted(zip(r.frame["user"], r.frame["item"])) == [("b", "x"), ("b", "z")]  # "a" keeps one item only
    reasons = set(r.report.changes["reason"])
    assert any("implicit threshold" in x for x in reasons) and any("k-core" in x for x in reasons)


@pytest.mark.parametrize("how", ["minmax", "zscore", "user_mean"])
def test_normalisation(how):
    r = clean(FRAME, CleaningConfig(rating_scale=(0, 5), outliers="clip", normalize=how))
    ratings = r.frame["rating"].to_numpy()
    if how == "minmax":
        assert ratings.min() >= 0 and ratings.max() <= 1
    elif how == "zscore":
        assert abs(ratings.mean()) < 1e-6
    else:
        assert np.allclose(r.frame.groupby("user")["rating"].mean(), 0, atol=1e-6)
    assert (r.report.changes["reason"] == f"normalised ({how})").sum() == len(r.frame)


def test_bad_config():
    with pytest.raises(ConfigError, match="'outliers' parameter of CleaningConfig must be one of 'drop', 'clip'; got 'cap'"):
        clean(FRAME, CleaningConfig(outliers="cap"))


def test_clean_interactions_keeps_tables(tiny_split, tmp_path):
    data, report = clean_interactions(tiny_split.train, CleaningConfig(implicit_threshold=4))
    assert len(data) == 78 and data.n_items == 8  # the two 3-star rows (items 8, 9) are gone
    assert data.item_table["title"].tolist() == ["apple", "banana", "cherry", "grape", "hammer", "wrench", "screwdriver", "pliers"]
    assert set(report.changes.query("action == 'dropped'")["item"]) == {8, 9}
    report.save(tmp_path / "r.csv")
    assert len(pd.read_csv(tmp_path / "r.csv")) == 80  # 2 dropped + 78 converted to implicit 1.0


def test_users_and_items_left_without_interactions_are_counted():
    r = clean(FRAME, CleaningConfig(implicit_threshold=4))
    summary = r.report.summary()
    assert summary["catalogue: items left without interactions"] == 1  # z: its only rating is 3
    assert summary["catalogue: users left without interactions"] == 2  # b (2, 3) and c (0)
    issue = next(i for i in r.report.issues if i.key.startswith("catalogue: users"))
    assert issue.examples == ("user 'b'", "user 'c'")
    assert "lost every interaction to cleaning and left the catalogue" in issue.text()


def test_clean_interactions_names_lost_items_by_raw_id():
    from lmrec.data import Interactions

    data = Interactions.from_frame(FRAME.dropna().drop(columns="line"))
    cleaned, report = clean_interactions(data, CleaningConfig(implicit_threshold=4))
    assert cleaned.item_ids.tolist() == ["x", "y"]
    assert next(i for i in report.issues if i.key.startswith("catalogue: items")).examples == ("item 'z'",)
