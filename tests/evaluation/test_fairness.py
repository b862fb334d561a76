"""Fairness and exposure measures against hand-computed examples."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lmrec.evaluation.fairness import (
    exposure_report,
    group_gap,
    list_accuracy,
    popularity_segments,
    rerank_popularity,
    tradeoff_curve,
)

POP = np.array([10, 8, 6, 4, 2, 1, 1, 0, 0, 0])
TOP = np.array([[0, 5], [0, 2]])
TRUTH = sp.csr_matrix((np.ones(3), ([0, 0, 1], [5, 7, 2])), shape=(2, 10))
W2 = 1 / np.log2(3)  # exposure of rank 2


def test_segments_head_mid_tail_by_popularity():
    assert popularity_segments(POP).tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2, 2]


def test_exposure_report_by_hand():
    r = exposure_report(TOP, POP, TRUTH)
    assert r["coverage"] == pytest.approx(0.3)
    assert r["gini"] == pytest.approx(0.75)  # slots [2,0,1,0,0,1,0,0,0,0]
    assert r["arp"] == pytest.approx((10 + 1 + 10 + 6) / 4)
    assert (r["head_slots"], r["mid_slots"], r["tail_slots"]) == pytest.approx((0.5, 0.25, 0.25))
    assert r["head_exposure"] == pytest.approx(2 / (2 + 2 * W2))
    assert np.isnan(r["head_recall"]) and r["mid_recall"] == 1.0 and r["tail_recall"] == 0.5
    share = np.array([2, W2, W2]) / (2 + 2 * W2)  # items 0, 5, 2; relevance 1/3 each on 5, 7, 2
    assert r["attention_gap"] == pytest.approx(0.5 * (share[0] + 2 * abs(share[1] - 1 / 3) + 1 / 3))


def test_empty_slots_are_not_exposure():
    r = exposure_report(np.array([[0, -1]]), POP)
    assert r["head_slots"] == 1.0 and r["coverage"] == pytest.approx(0.1)


def test_list_accuracy_by_hand():
    acc = list_accuracy(TOP, TRUTH)
    assert acc["ndcg"] == pytest.approx((W2 / (1 + W2) + W2) / 2)
    assert acc["recall"] == pytest.approx((0.5 + 1) / 2)


def test_rerank_trades_score_for_unpopular_items():
    items, scores = np.array([[0, 5, 2]]), np.array([[3.0, 2.0, 1.0]])
    assert rerank_popularity(items, scores, POP, 0.0, 3).tolist() == [[0, 5, 2]]
    assert rerank_popularity(items, scores, POP, 0.5, 3).tolist() == [[5, 0, 2]]  # 0.525 > 0.5 > 0.1
    assert rerank_popularity(items, scores, POP, 1.0, 2).tolist() == [[5, 2]]
    with pytest.raises(ValueError, match="lam must be in"):
        rerank_popularity(items, scores, POP, 2.0, 2)


def test_tradeoff_curve_moves_exposure_to_the_tail():
    rng = np.random.default_rng(0)
    pop = np.sort(rng.zipf(1.5, 200))[::-1].astype(float)
    items = np.tile(np.arange(50), (30, 1))  # every user's candidates: the 50 most popular, best first
    scores = -np.arange(50, dtype=float)[None, :].repeat(30, 0)
    truth = sp.random(30, 200, density=0.05, format="csr", random_state=1)
    curve = tradeoff_curve(items, scores, pop, truth, k=10, lams=(0.0, 0.9, 1.0))
    assert curve[0]["arp"] > curve[1]["arp"] >= curve[2]["arp"]
    assert curve[0]["head_slots"] == 1.0 > curve[2]["head_slots"] and [c["lam"] for c in curve] == [0.0, 0.9, 1.0]


def test_group_gap_finds_a_real_gap_and_not_a_false_one():
    rng = np.random.default_rng(3)
    values = np.r_[rng.normal(0.3, 0.05, 60), rng.normal(0.1, 0.05, 60), rng.normal(0.9, 0.05, 5), np.nan]
    groups = np.array(["a"] * 60 + ["b"] * 60 + ["c"] * 5 + ["a"])
    gap = group_gap(values, groups)
    assert set(gap.groups) == {"a", "b"}, "group c has too few users"
    assert (gap.best, gap.worst) == ("a", "b") and gap.groups["a"][0] == 60
    assert gap.gap_low < gap.gap < gap.gap_high and abs(gap.gap - 0.2) < 0.03 and gap.p < 1e-6
    same = group_gap(rng.normal(0.3, 0.05, 120), np.array(["a", "b"] * 60))
    assert same.p > 0.01 and same.gap_low < 0.03
    many = group_gap(rng.normal(0.3, 0.05, 13 * 25), np.repeat(np.arange(13), 25))
    assert many.gap_low <= many.gap <= many.gap_high and many.p > 0.01, "13 equal groups: an interval about the gap"
    with pytest.raises(ValueError, match="at least 2 groups"):
        group_gap(values[:60], groups[:60])
