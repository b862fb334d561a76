"""BPR-MF steps: negatives over the catalogue are scored densely, with the same result."""
from __future__ import annotations

import numpy as np
import pytest

from lmrec.models import BPRMF
from lmrec.models import mf as mf_module
from lmrec.training import TrainConfig


@pytest.mark.parametrize("loss, sampler, bias", [("softmax", "all", False), ("bpr", "uniform", True)])
def test_dense_and_per_row_scoring_train_alike(tiny_split, monkeypatch, loss, sampler, bias):
    cfg = TrainConfig(epochs=20, batch_size=16, lr=0.05, n_negatives=3, sampler=sampler, progress=False, seed=2)
    factors = {}
    for share in (0, 10**9):  # 0: every step looks rows up one by one; 10**9: every step scores densely
        monkeypatch.setattr(mf_module, "DENSE_SHARE", share)
        model = BPRMF(dim=8, reg=1e-3, loss=loss, item_bias=bias, config=cfg).fit(tiny_split.train)
        factors[share] = np.concatenate([f.numpy().ravel() for f in model.factors()])
    np.testing.assert_allclose(factors[10**9], factors[0], atol=1e-4)
