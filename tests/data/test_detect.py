"""Fake-profile detection: the statistics by hand, and injected fakes caught."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lmrec.data.detect import degsim, detect_fake_users, rdma, robust_z
from lmrec.data.interactions import Interactions
from lmrec.data.perturb import inject_fake_users
from lmrec.errors import ConfigError


def test_degsim_and_rdma_by_hand():
    binary = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=np.float32))
    assert degsim(binary, k=1).tolist() == pytest.approx([1.0, 1.0, 0.0])
    data = Interactions.from_frame(pd.DataFrame({"user": [0, 1, 1], "item": [0, 0, 1], "rating": [5.0, 1.0, 3.0]}))
    # item 0: mean 3 over 2 ratings; item 1: mean 3 over 1 rating
    assert rdma(data).tolist() == pytest.approx([abs(5 - 3) / 2, (abs(1 - 3) / 2 + 0) / 2])
    assert robust_z(np.array([1.0, 1.0, 1.0])).tolist() == [0, 0, 0]


def test_injected_random_attack_users_are_flagged():
    """Real users agree with items' qualities (rating = quality + small noise); random-attack
    fillers are rated around the global mean, far from each item's own mean."""
    rng = np.random.default_rng(0)
    quality = rng.integers(1, 6, 400)
    rows = [(u, i, float(np.clip(round(quality[i] + rng.normal(0, 0.5)), 1, 5)))
            for u in range(300) for i in rng.choice(400, rng.integers(15, 60), replace=False)]
    data = Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item", "rating"]))
    attacked = inject_fake_users(data, "random", np.array([390, 391, 392]), share=0.03, filler=25, seed=1)
    found = detect_fake_users(attacked.data)
    fake = np.zeros(attacked.data.n_users, bool)
    fake[attacked.fake_users] = True
    assert found.flagged[fake].mean() >= 0.8, "most fakes are caught"
    assert found.flagged[~fake].mean() <= 0.05, "few real users are flagged"


def _clustered_users(n_users: int, rng: np.random.Generator) -> list[tuple[int, int, float]]:
    """Implicit data with tastes: 8 groups of 50 items; each user takes 10-40 items, mostly from one group."""
    rows = []
    for u in range(n_users):
        group = np.arange(50) + 50 * (u % 8)
        n = int(rng.integers(10, 40))
        own = rng.choice(group, int(0.8 * n), replace=False)
        other = rng.choice(400, n - len(own), replace=False)
        rows += [(u, int(i), 1.0) for i in np.unique(np.r_[own, other])]
    return rows


def test_reference_users_keep_a_flood_of_fakes_from_moving_the_median():
    """400 bandwagon fakes (the same 10 popular items, 2 targets, 5 random fillers) outnumber 300
    real users: over everyone, their DegSim is the median and none stands out; against the real
    users alone (the reference), the fakes are flagged and the real users are not."""
    rng = np.random.default_rng(3)
    rows = _clustered_users(300, rng)
    head = np.arange(0, 400, 40)
    for f in range(400):
        items = np.unique(np.r_[head, [398, 399], rng.choice(390, 5, replace=False)])
        rows += [(300 + f, int(i), 1.0) for i in items]
    data = Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item", "rating"]))
    fake = np.arange(data.n_users) >= 300
    plain = detect_fake_users(data)
    assert plain.flagged[fake].mean() < 0.05, "over everyone the flood sets the normal range"
    found = detect_fake_users(data, reference=np.arange(300))
    assert found.flagged[fake].mean() >= 0.95
    assert found.flagged[~fake].mean() <= 0.02
    mask = detect_fake_users(data, reference=~fake)  # a bool mask selects the same reference
    np.testing.assert_array_equal(mask.flagged, found.flagged)


def test_degsim_of_some_rows_among_some_users():
    binary = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=np.float32))
    assert degsim(binary, k=1, rows=np.array([0, 3]), among=np.array([0, 2])).tolist() == \
        pytest.approx([0.0, 1 / np.sqrt(2)])  # row 0 is not its own neighbour; 3 is close to 0 only
    assert degsim(binary, k=1, rows=np.array([2])).tolist() == [0.0]


def test_reference_errors_name_the_parameter():
    data = Interactions.from_frame(pd.DataFrame({"user": [0, 1, 1], "item": [0, 0, 1]}))
    with pytest.raises(ConfigError, match="'reference' selects no user"):
        detect_fake_users(data, reference=np.zeros(0, np.int64))
    with pytest.raises(ConfigError, match=r"user indices must lie in \[0, 2\)"):
        detect_fake_users(data, reference=np.array([5]))
    with pytest.raises(ConfigError, match="one entry per user"):
        detect_fake_users(data, reference=np.array([True]))
    with pytest.raises(ConfigError, match="'threshold' parameter of detect_fake_users must be a number > 0"):
        detect_fake_users(data, threshold=0)
