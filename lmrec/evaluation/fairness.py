"""Fairness across user groups and items: gaps with intervals, exposure, and a re-ranking mitigation.

User side: :func:`group_gap` compares a per-user metric between groups (gender, age band,
activity level, ...): each group's mean with its 95% interval, the gap between the best and the
worst group with a bootstrap interval, and a Kruskal-Wallis test of equal distributions.

Item side, from top-k lists (:func:`exposure_report`):

* items are cut into popularity segments by training interactions (:func:`popularity_segments`:
  head = the most popular 20% of items, mid = the next 30%, tail = the least popular 50%);
* per segment: its share of recommended slots and of position-weighted exposure (weight
  1 / log2(1 + rank), the DCG browsing model) and its recall (test interactions of the segment's
  items that the lists find);
* coverage, the Gini coefficient of exposure, the average recommended popularity (ARP,
  Abdollahpouri et al. 2019: the mean training popularity of recommended items);
* the attention gap, amortised equity of attention (Biega et al. 2018): half the L1 distance
  between items' shares of exposure and their shares of relevance (test interactions): 0 when
  every item is exposed in proportion to its merit, 1 when exposure goes only to items nobody
  wanted.

Mitigation: :func:`rerank_popularity` re-ranks each user's candidate list by
``(1 - lam) * score + lam * (1 - popularity percentile)`` (scores min-max scaled within the list);
sweeping ``lam`` from 0 gives the accuracy-fairness trade-off curve (:func:`tradeoff_curve`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy import stats

from lmrec.evaluation.metrics import gini, ndcg, recall
from lmrec.evaluation.stats import mean_interval

SEGMENTS = ("head", "mid", "tail")


@dataclass(frozen=True)
class GroupGap:
    """A metric across user groups: ``groups[g] = (users, mean, 95% half-width)``; ``gap`` = best
    minus worst group mean, with the bootstrap 95% interval of that difference between those two
    groups ``gap_low``..``gap_high`` (the groups are picked after looking, so with many small
    groups the gap is optimistic: read it with ``p``); ``p`` the Kruskal-Wallis p-value of equal
    distributions across all groups."""

    groups: dict[str, tuple[int, float, float]]
    best: str
    worst: str
    gap: float
    gap_low: float
    gap_high: float
    p: float


def group_gap(values: np.ndarray, groups: np.ndarray, *, min_users: int = 20, n_boot: int = 1000,
              seed: int = 0) -> GroupGap:
    """Compare per-user ``values`` (NaN skipped) between the labels of ``groups`` (aligned);
    groups with fewer than ``min_users`` users are left out."""
    values, groups = np.asarray(values, dtype=np.float64), np.asarray(groups)
    ok = ~np.isnan(values)
    labels = [g for g in np.unique(groups[ok]) if (groups[ok] == g).sum() >= min_users]
    if len(labels) < 2:
        raise ValueError(f"group_gap needs at least 2 groups of >= {min_users} users; got {len(labels)}.")
    parts = {str(g): values[ok & (groups == g)] for g in labels}
    summary = {g: (len(v), *mean_interval(v)) for g, v in parts.items()}
    means = {g: s[1] for g, s in summary.items()}
    best, worst = max(means, key=lambda g: means[g]), min(means, key=lambda g: means[g])
    rng = np.random.default_rng(seed)
    hi, lo = parts[best], parts[worst]
    boots = np.array([hi[rng.integers(0, len(hi), len(hi))].mean() - lo[rng.integers(0, len(lo), len(lo))].mean()
                      for _ in range(n_boot)])  # users resampled within the two groups
    p = float(stats.kruskal(*parts.values()).pvalue) if any(v.std() > 0 for v in parts.values()) else 1.0
    return GroupGap(summary, best, worst, means[best] - means[worst], float(np.quantile(boots, 0.025)),
                    float(np.quantile(boots, 0.975)), p)


def popularity_segments(popularity: np.ndarray, head: float = 0.2, mid: float = 0.3) -> np.ndarray:
    """(N,) segment of each item, 0 head / 1 mid / 2 tail, by training popularity (ties: lower
    index first): the top ``head`` share of items, the next ``mid`` share, the rest."""
    n = len(popularity)
    order = np.argsort(-np.asarray(popularity), kind="stable")
    seg = np.full(n, 2, dtype=np.int64)
    n_head = int(round(head * n))
    seg[order[:n_head]] = 0
    seg[order[n_head: n_head + int(round(mid * n))]] = 1
    return seg


def position_weights(k: int) -> np.ndarray:
    """(k,) exposure of ranks 1..k under the DCG browsing model: 1 / log2(1 + rank)."""
    return 1.0 / np.log2(np.arange(2, k + 2))


def exposure_report(top: np.ndarray, popularity: np.ndarray, truth: sp.csr_matrix | None = None,
                    segments: np.ndarray | None = None) -> dict[str, float]:
    """Item-side measures of top-k lists ``top`` (U, k) of item indices (-1: an empty slot);
    ``truth`` (U, N) the users' test items (rows aligned with ``top``) for recall and the
    attention gap; ``popularity`` (N,) training interactions per item."""
    top = np.asarray(top)
    n_items = len(popularity)
    seg = popularity_segments(popularity) if segments is None else segments
    filled = top >= 0
    items = top[filled]
    weights = np.broadcast_to(position_weights(top.shape[1]), top.shape)[filled]
    slots = np.bincount(items, minlength=n_items).astype(np.float64)
    exposure = np.bincount(items, weights=weights, minlength=n_items)
    out: dict[str, float] = {"coverage": float((slots > 0).mean()),
                             "gini": gini(slots, len(top), top.shape[1], np.zeros(n_items, bool)),
                             "arp": float(popularity[items].mean()) if len(items) else 0.0}
    for s, name in enumerate(SEGMENTS):
        out[f"{name}_slots"] = float(slots[seg == s].sum() / max(slots.sum(), 1))
        out[f"{name}_exposure"] = float(exposure[seg == s].sum() / max(exposure.sum(), 1e-12))
    if truth is not None:
        rows = np.repeat(np.arange(len(top)), top.shape[1]).reshape(top.shape)
        hit = np.zeros(top.shape, dtype=bool)
        hit[filled] = np.asarray(truth[rows[filled], items]).reshape(-1) > 0
        relevant = np.bincount(truth.indices, minlength=n_items).astype(np.float64)
        found = np.bincount(top[hit], minlength=n_items)
        for s, name in enumerate(SEGMENTS):
            total = relevant[seg == s].sum()
            out[f"{name}_recall"] = float(found[seg == s].sum() / total) if total else float("nan")
        if relevant.sum() and exposure.sum():
            out["attention_gap"] = float(0.5 * np.abs(exposure / exposure.sum() - relevant / relevant.sum()).sum())
    return out


def rerank_popularity(items: np.ndarray, scores: np.ndarray, popularity: np.ndarray, lam: float, k: int) -> np.ndarray:
    """(U, k) re-ranked lists from candidate lists ``items`` (U, K) with their ``scores``: by
    ``(1 - lam) * min-max scaled score + lam * (1 - popularity percentile)``; ``lam`` 0 keeps
    the model's order."""
    if not 0 <= lam <= 1:
        raise ValueError(f"rerank_popularity: lam must be in [0, 1]; got {lam!r}.")
    items = np.asarray(items)
    listed = items >= 0  # -1: an empty slot (fewer rankable items than the list length)
    scores = np.where(listed, np.asarray(scores, dtype=np.float64), np.nan)
    lo, hi = np.nanmin(scores, axis=1, keepdims=True), np.nanmax(scores, axis=1, keepdims=True)
    scaled = (scores - lo) / np.where(hi > lo, hi - lo, 1.0)
    percentile = stats.rankdata(popularity, method="average") / len(popularity)
    value = np.where(listed, (1 - lam) * scaled + lam * (1 - percentile[np.maximum(items, 0)]), -np.inf)
    order = np.argsort(-value, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(items, order, axis=1)


def list_accuracy(top: np.ndarray, truth: sp.csr_matrix) -> dict[str, float]:
    """Mean NDCG@k and recall@k (as the evaluator defines them) of top-k lists ``top`` (U, k)
    against ``truth`` rows; users without test items are skipped."""
    k = top.shape[1]
    rows = np.repeat(np.arange(len(top)), k)
    hit = (np.asarray(truth[rows, np.maximum(top, 0).ravel()]).reshape(top.shape) > 0) & (top >= 0)
    n_pos = torch.as_tensor(np.diff(truth.indptr))
    ok = n_pos > 0
    if not bool(ok.any()):
        return {"ndcg": float("nan"), "recall": float("nan")}
    hits = torch.as_tensor(hit)
    return {"ndcg": float(ndcg(hits, n_pos, k)[ok].mean()), "recall": float(recall(hits, n_pos, k)[ok].mean())}


def tradeoff_curve(items: np.ndarray, scores: np.ndarray, popularity: np.ndarray, truth: sp.csr_matrix, k: int,
                   lams: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)) -> list[dict[str, float]]:
    """Accuracy and exposure of :func:`rerank_popularity` lists for each ``lam``."""
    rows = []
    for lam in lams:
        top = rerank_popularity(items, scores, popularity, lam, k)
        rows.append({"lam": lam, **list_accuracy(top, truth), **exposure_report(top, popularity, truth)})
    return rows
