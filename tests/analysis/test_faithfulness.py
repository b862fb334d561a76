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


@pytest.mark.parametrize("scorer", ["dot", "cosine"])
def test_the_mean_towers_exact_split_adds_up_to_the_score(split, scorer, tmp_path):
    from lmrec.models import LMRanker
    from lmrec.models.lm import ItemTower

    model = LMRanker(items=ItemTower(dim=16), scorer=scorer, cache_dir=tmp_path,
                     config=TrainConfig(epochs=2, batch_size=512, progress=False)).fit(split.train)
    row = model.train_matrix_[3]
    parts = model.history_attributions(3, 7, row)
    assert parts is not None and parts.shape == (row.nnz,)
    score = float(model.score_rows(np.array([3]), row)[0, 7])
    assert parts.sum() == pytest.approx(score, rel=1e-4, abs=1e-5), "no user text or ID part: the parts are the score"
    # the exact explainer is usable in the deletion test, and beats random deletions on average
    task = EvalTask.build(split.train, split.test)
    result = deletion_test(model, task, task.users[:40], sizes=(3,), explainers=("exact",), seed=0)
    assert np.nanmean(result.drops["exact"][3]) >= np.nanmean(result.random[3])
    attention = LMRanker(items=ItemTower(dim=16), user="attention", cache_dir=tmp_path,
                         config=TrainConfig(epochs=1, batch_size=512, progress=False)).fit(split.train)
    assert attention.history_attributions(3, 7, row) is None
    assert "exact" not in deletion_test(attention, task, task.users[:5], sizes=(1,), explainers=("exact",)).drops
