"""Fake-profile detection: the statistics by hand, and injected fakes caught."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lmrec.data.detect import degsim, detect_fake_users, rdma, robust_z
from lmrec.data.interactions import Interactions
from lmrec.data.perturb import inject_fake_users


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
