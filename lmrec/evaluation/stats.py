"""Intervals and paired tests for comparisons."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def mean_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """(mean, half-width) of a Student-t interval; half-width NaN with fewer than 2 values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) < 2:
        return float(v.mean()), float("nan")
    sem = v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * sem)


@dataclass(frozen=True)
class PairedTest:
    """Per-user paired comparison of ``b`` against ``a`` on one metric."""

    n_users: int
    mean_diff: float  # mean of b - a
    p_wilcoxon: float
    p_ttest: float


def paired_test(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Wilcoxon signed-rank and paired t-test of per-user values (NaN pairs dropped)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    diff = b - a
    if len(diff) < 2 or np.allclose(diff, 0):
        return PairedTest(len(diff), float(diff.mean()) if len(diff) else 0.0, 1.0, 1.0)
    p_w = float(stats.wilcoxon(a, b, zero_method="wilcox").pvalue)
    p_t = float(stats.ttest_rel(b, a).pvalue)
    return PairedTest(len(diff), float(diff.mean()), p_w, p_t)


def paired_on_keys(a: dict[object, float], b: dict[object, float]) -> PairedTest | None:
    """:func:`paired_test` of ``b`` against ``a`` over the keys both have (e.g. (seed, user) pairs pooled
    over seeds); None when they share none."""
    common = sorted(set(a) & set(b), key=repr)
    if not common:
        return None
    return paired_test(np.array([a[k] for k in common]), np.array([b[k] for k in common]))
