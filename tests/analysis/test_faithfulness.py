"""The deletion test: faithful attributions move the item down more than random deletions."""
from __future__ import annotations

import numpy as np
import pytest

from lmrec.analysis.faithfulness import attribution_order, deletion_test
from lmrec.data.splits import random_split
from lmrec.data.synthetic import generate
from lmrec.evaluation.evaluator import EvalTask
from lmrec.models import BPRMF, ItemKNN
from lmrec.training import TrainConfig


@pytest.fixture(scope="module")
def split():
    return random_split(generate(300, 200, 6000, n_clusters=6, seed=2), seed=1)


def test_leave_one_out_beats_random_deletions_for_itemknn(split):
    model = ItemKNN(k=50).fit(split.train)
    task = EvalTask.build(split.train, split.test)
    users = task.users[:60]
    result = deletion_test(model, task, users, sizes=(1, 3), explainers=("leave-one-out", "random"), seed=0)
    for n in (1, 3):
        loo, rnd = result.drops["leave-one-out"][n], result.random[n]
        ok = ~np.isnan(loo)
        assert ok.sum() > 40
        assert loo[ok].mean() > rnd[ok].mean() + 0.5, (n, loo[ok].mean(), rnd[ok].mean())
        assert (loo[ok] >= 0).all()
    # deleting more of the attributed items moves the item further
    assert np.nanmean(result.drops["leave-one-out"][3]) > np.nanmean(result.drops["leave-one-out"][1])


def test_orders_and_inapplicable_models(split):
    model = ItemKNN(k=50).fit(split.train)
    task = EvalTask.build(split.train, split.test)
    row = task.history[int(task.users[0])]
    rng = np.random.default_rng(0)
    for explainer in ("leave-one-out", "similarity", "random"):
        order = attribution_order(model, explainer, int(task.users[0]), 5, row, rng)
        assert sorted(order.tolist()) == sorted(row.indices.tolist())
    with pytest.raises(ValueError, match="unknown explainer 'shap'"):
        attribution_order(model, "shap", 0, 5, row, rng)
    mf = BPRMF(dim=4, config=TrainConfig(epochs=1, progress=False)).fit(split.train)
    with pytest.raises(ValueError, match="does not read the history when scoring"):
        deletion_test(mf, task, task.users[:3])
