"""Metrics: hand-computed examples, and agreement with ranx on random rankings."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmrec.errors import ConfigError
from lmrec.evaluation.metrics import (PER_USER, auc_per_user, coverage, gini, parse_metric, tail_share)

# one user, 3 test items, hits at ranks 1 and 3 of the top 5
HITS = torch.tensor([[True, False, True, False, False]])
NPOS = torch.tensor([3])


def test_hand_computed_values():
    d = [1 / math.log2(r + 2) for r in range(5)]
    assert PER_USER["ndcg"](HITS, NPOS, 5).item() == pytest.approx((d[0] + d[2]) / (d[0] + d[1] + d[2]))
    assert PER_USER["recall"](HITS, NPOS, 5).item() == pytest.approx(2 / 3)
    assert PER_USER["precision"](HITS, NPOS, 5).item() == pytest.approx(2 / 5)
    assert PER_USER["hr"](HITS, NPOS, 2).item() == 1.0
    assert PER_USER["mrr"](HITS, NPOS, 5).item() == 1.0
    assert PER_USER["map"](HITS, NPOS, 5).item() == pytest.approx((1 + 2 / 3) / 3)
    # cutoff 2: only the first hit counts; IDCG over min(3, 2) positions
    assert PER_USER["ndcg"](HITS, NPOS, 2).item() == pytest.approx(d[0] / (d[0] + d[1]))
    assert PER_USER["map"](HITS, NPOS, 2).item() == pytest.approx(1 / 2)


def test_no_hit_and_late_first_hit():
    hits = torch.tensor([[False, False, False], [False, False, True]])
    npos = torch.tensor([1, 1])
    assert PER_USER["mrr"](hits, npos, 3).tolist() == pytest.approx([0.0, 1 / 3])
    assert PER_USER["hr"](hits, npos, 3).tolist() == [0.0, 1.0]
    assert PER_USER["ndcg"](hits, npos, 3).tolist() == pytest.approx([0.0, 0.5])


def test_auc_with_ties_and_excluded_items():
    scores = torch.tensor([[0.9, 0.5, 0.5, 0.1, -torch.inf]])
    truth = torch.tensor([[False, True, False, False, False]])
    valid = torch.isfinite(scores)
    # positive 0.5 vs negatives {0.9, 0.5, 0.1}: beats 0.1, ties 0.5 -> (1 + 0.5) / 3
    assert auc_per_user(scores, truth, valid).item() == pytest.approx(0.5)
    scores2 = torch.tensor([[0.3, 0.9, 0.8, 0.1, 0.2]])
    truth2 = torch.tensor([[False, True, True, False, False]])
    assert auc_per_user(scores2, truth2, torch.ones_like(truth2)).item() == 1.0


def test_list_metrics():
    exposure = np.array([5, 0, 3, 2])
    tail = np.array([False, True, True, True])
    assert coverage(exposure, 0, 0, tail) == 0.75
    assert tail_share(exposure, 0, 0, tail) == 0.5
    assert gini(np.array([1, 1, 1, 1]), 0, 0, tail) == 0.0
    assert gini(np.array([0, 0, 0, 8]), 0, 0, tail) == pytest.approx(0.75)


def test_parse_metric():
    assert parse_metric("NDCG@10").label == "ndcg@10" and parse_metric("auc").k is None
    with pytest.raises(ConfigError, match=r"Unknown metric 'ndgc@10'; supported: ndcg@k, recall@k"):
        parse_metric("ndgc@10")
    with pytest.raises(ConfigError, match="needs a cutoff"):
        parse_metric("recall")
    with pytest.raises(ConfigError, match="'auc' takes no cutoff"):
        parse_metric("auc@5")


def test_agrees_with_ranx():
    ranx = pytest.importorskip("ranx")
    rng = np.random.default_rng(0)
    n_users, n_items, k = 60, 40, 10
    qrels, run, hits, npos = {}, {}, [], []
    for u in range(n_users):
        rel = rng.choice(n_items, size=rng.integers(1, 15), replace=False)
        scores = rng.random(n_items)
        qrels[f"u{u}"] = {f"i{i}": 1 for i in rel}
        run[f"u{u}"] = {f"i{i}": float(s) for i, s in enumerate(scores)}
        top = np.argsort(-scores)[:k]
        hits.append(np.isin(top, rel))
        npos.append(len(rel))
    hits_t, npos_t = torch.tensor(np.array(hits)), torch.tensor(npos)
    names = {"ndcg": "ndcg", "recall": "recall", "precision": "precision", "hr": "hit_rate", "mrr": "mrr"}
    expected = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), [f"{v}@{k}" for v in names.values()])
    for ours, theirs in names.items():
        assert PER_USER[ours](hits_t, npos_t, k).mean().item() == pytest.approx(expected[f"{theirs}@{k}"], abs=1e-9)
    # ranx divides AP by |relevant|; lmrec (like RecBole) by min(|relevant|, k): equal when |relevant| <= k
    small = npos_t <= k
    ap = ranx.evaluate(ranx.Qrels({q: v for (q, v), s in zip(qrels.items(), small) if s}),
                       ranx.Run({q: v for (q, v), s in zip(run.items(), small) if s}), f"map@{k}")
    assert PER_USER["map"](hits_t[small], npos_t[small], k).mean().item() == pytest.approx(ap, abs=1e-9)
