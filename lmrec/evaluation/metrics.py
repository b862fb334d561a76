"""Ranking metrics, named by string ("ndcg@10", "auc", "coverage@20").

Per-user metrics take ``hits`` -- a ``(users, K)`` boolean tensor, ``hits[u, r]`` true when the
item at rank ``r`` of user ``u``'s top-K list is one of the user's test items -- and ``n_pos``,
the number of test items per user, and return one value per user. Gains are binary;
IDCG runs over ``min(|test|, k)`` positions. List metrics (coverage, gini, tail) are computed
from all top-K lists together.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from lmrec.errors import ConfigError

PerUser = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def _discounts(k: int) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))


def ndcg(hits: torch.Tensor, n_pos: torch.Tensor, k: int) -> torch.Tensor:
    """DCG@k / IDCG@k with binary gains; IDCG = sum of 1/log2(r+2) for r < min(|test|, k)."""
    disc = _discounts(k)
    dcg = (hits[:, :k].double() * disc).sum(1)
    ideal = torch.cumsum(disc, 0)[(n_pos.clamp(max=k) - 1).clamp(min=0)]
    return torch.where(n_pos > 0, dcg / ideal, torch.zeros_like(dcg))


def recall(hits: torch.Tensor, n_pos: torch.Tensor, k: int) -> torch.Tensor:
    """Hits in the top k divided by the number of test items."""
    return hits[:, :k].double().sum(1) / n_pos.clamp(min=1)


def precision(hits: torch.Tensor, n_pos: torch.Tensor, k: int) -> torch.Tensor:
    """Hits in the top k divided by k."""
    return hits[:, :k].double().sum(1) / k


def hit_rate(hits: torch.Tensor, n_pos: torch.Tensor, k: int) -> torch.Tensor:
    """1 if any test item is in the top k, else 0."""
    return hits[:, :k].any(1).double()


def mrr(hits: torch.Tensor, n_pos: torch.Tensor, k: int) -> torch.Tensor:
    """1 / rank of the first hit within the top k (0 when none)."""
    h = hits[:, :k]
    first = torch.argmax(h.int(), dim=1)
    return torch.where(h.any(1), 1.0 / (first.double() + 1), torch.zeros(len(h), dtype=torch.float64))


def average_precision(hits: torch.Tensor, n_pos: torch.Tensor, k: int) -> torch.Tensor:
    """AP@k = sum over hit ranks r <= k of precision@r, divided by min(|test|, k)."""
    h = hits[:, :k].double()
    prec_at = torch.cumsum(h, 1) / torch.arange(1, h.shape[1] + 1, dtype=torch.float64)
    return (prec_at * h).sum(1) / n_pos.clamp(min=1, max=k)


PER_USER: dict[str, PerUser] = {
    "ndcg": ndcg, "recall": recall, "precision": precision, "hr": hit_rate, "mrr": mrr, "map": average_precision,
}


def coverage(exposure: np.ndarray, n_lists: int, k: int, tail_mask: np.ndarray) -> float:
    """Share of the candidate items that appear in at least one top-k list."""
    return float((exposure > 0).mean()) if len(exposure) else 0.0


def gini(exposure: np.ndarray, n_lists: int, k: int, tail_mask: np.ndarray) -> float:
    """Gini coefficient of item exposure over all top-k lists (0 = equal, 1 = one item gets all)."""
    x = np.sort(exposure.astype(np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    idx = np.arange(1, n + 1)
    return float(((2 * idx - n - 1) * x).sum() / (n * total))


def tail_share(exposure: np.ndarray, n_lists: int, k: int, tail_mask: np.ndarray) -> float:
    """Share of recommended slots filled by long-tail items (the 80% least popular)."""
    total = exposure.sum()
    return float(exposure[tail_mask].sum() / total) if total else 0.0


LIST_METRICS: dict[str, Callable[[np.ndarray, int, int, np.ndarray], float]] = {
    "coverage": coverage, "gini": gini, "tail": tail_share,
}
SUPPORTED = [*PER_USER, *LIST_METRICS, "auc"]
_NAME = re.compile(r"^([a-z]+)(?:@(\d+))?$")


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric name: ``ndcg@10`` -> MetricSpec("ndcg", 10)."""

    kind: str
    k: int | None

    @property
    def label(self) -> str:
        return self.kind if self.k is None else f"{self.kind}@{self.k}"

    @property
    def per_user(self) -> bool:
        return self.kind in PER_USER or self.kind == "auc"


def parse_metric(name: str) -> MetricSpec:
    """Parse "ndcg@10", "AUC", ...; raises ConfigError naming the supported metrics."""
    m = _NAME.match(name.strip().lower())
    kind = m.group(1) if m else None
    if kind not in SUPPORTED:
        raise ConfigError(f"Unknown metric {name!r}; supported: "
                          + ", ".join(f"{s}@k" if s != "auc" else s for s in SUPPORTED) + ".")
    k = int(m.group(2)) if m and m.group(2) else None
    if kind == "auc" and k is not None:
        raise ConfigError(f"'auc' takes no cutoff; got {name!r}.")
    if kind != "auc" and (k is None or k < 1):
        raise ConfigError(f"Metric {name!r} needs a cutoff, e.g. '{kind}@10'.")
    return MetricSpec(kind, k)


def auc_per_user(scores: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """AUC per row: P(score of a positive > score of a negative), ties counted one half.

    ``scores`` (B, N); ``truth`` (B, N) bool positives; ``valid`` (B, N) bool candidates (seen
    and non-candidate items False). Computed by sorting, O(N log N) per row.
    """
    big = torch.finfo(scores.dtype).max
    s = torch.where(valid & ~truth, scores, torch.full_like(scores, big))  # negatives only
    s_sorted, _ = torch.sort(s, dim=1)
    pos = torch.where(truth, scores, torch.zeros_like(scores))
    less = torch.searchsorted(s_sorted, pos.contiguous(), right=False).double()
    less_eq = torch.searchsorted(s_sorted, pos.contiguous(), right=True).double()
    n_neg = (valid & ~truth).sum(1, keepdim=True).double()
    below = less + 0.5 * (less_eq - less)
    below = torch.minimum(below, n_neg)  # padding "big" values never count as negatives
    n_pos = truth.sum(1).double()
    total = (below * truth).sum(1)
    return torch.where((n_pos > 0) & (n_neg[:, 0] > 0), total / (n_pos * n_neg[:, 0]).clamp(min=1),
                       torch.full_like(total, float("nan")))
