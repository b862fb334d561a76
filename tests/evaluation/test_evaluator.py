"""The full-ranking evaluator on splits whose answers are known."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lmrec.data.splits import cold_item_split
from lmrec.errors import ConfigError
from lmrec.evaluation import Evaluator
from lmrec.evaluation.metrics import parse_metric
from lmrec.models import EASE, MostPopular, Random, Recommender


class Fixed(Recommender):
    """Scores item i as -i for everyone: the ranking is 0, 1, 2, ... minus seen items."""

    name = "fixed"

    def __init__(self) -> None:
        pass

    def _fit(self, train, valid):
        pass

    def _score(self, users, history):
        return -torch.arange(self.n_items_, dtype=torch.float32).expand(len(users), -1).clone()


def test_seen_items_removed_and_ranks_counted(tiny_split):
    model = Fixed().fit(tiny_split.train)
    res = Evaluator(tiny_split, ["hr@1", "mrr@10", "recall@5", "ndcg@10", "auc"]).evaluate(model)
    assert res.users.tolist() == [0, 10]
    # user 0 has seen 0,1,2: first unseen is 3 (the test item) -> rank 1
    # user 10 has seen 4,5,6: ranking 0,1,2,3,7 -> test item 7 at rank 5
    assert res.per_user["hr@1"].tolist() == [1.0, 0.0]
    assert res.per_user["mrr@10"].tolist() == pytest.approx([1.0, 1 / 5])
    assert res.per_user["recall@5"].tolist() == [1.0, 1.0]
    # AUC of user 10: item 7 scores above items 8, 9 only, of the 7 unseen negatives
    assert res.per_user["auc"].tolist() == pytest.approx([1.0, 2 / 6])


def test_removed_items_never_count_when_fewer_than_k_remain(tiny_split):
    """10 items, 3 seen: a top-10 list has 7 items. A test item the user has seen (a repeat)
    is removed from ranking, so it is neither a hit nor exposure, whatever the list length."""
    from lmrec.evaluation.evaluator import EvalTask, evaluate_task

    model = Fixed().fit(tiny_split.train)
    repeat = tiny_split.train.subset(np.array([0]))  # user 0's first training item, again as a test item
    task = EvalTask.build(tiny_split.train, repeat)
    res = evaluate_task(model, task, [parse_metric("hr@10"), parse_metric("ndcg@10"), parse_metric("coverage@10")])
    assert res.per_user["hr@10"].tolist() == [0.0] and res.per_user["ndcg@10"].tolist() == [0.0]
    assert res.aggregate["coverage@10"] == pytest.approx(7 / 10), "only the 7 unseen items were listed"


def test_batch_size_does_not_change_results(data_dir):
    from lmrec.data import get_protocol

    split = get_protocol("P3", data_dir)
    model = EASE(lam=200).fit(split.train)
    a = Evaluator(split, ["ndcg@10", "auc", "coverage@10"], batch_size=1000).evaluate(model)
    b = Evaluator(split, ["ndcg@10", "auc", "coverage@10"], batch_size=37).evaluate(model)
    np.testing.assert_allclose(a.per_user["ndcg@10"], b.per_user["ndcg@10"])
    np.testing.assert_allclose(a.per_user["auc"], b.per_user["auc"])
    assert a.aggregate == b.aggregate
    assert 0.05 < a.summary()["ndcg@10"] < 0.5


def test_random_is_near_chance_and_popularity_has_low_coverage(data_dir):
    from lmrec.data import get_protocol

    split = get_protocol("P3", data_dir)
    ev = Evaluator(split, ["auc", "coverage@10", "gini@10", "tail@10"])
    rnd = ev.evaluate(Random(seed=1).fit(split.train)).summary()
    pop = ev.evaluate(MostPopular().fit(split.train)).summary()
    assert abs(rnd["auc"] - 0.5) < 0.03
    assert pop["coverage@10"] < 0.1 < rnd["coverage@10"] and pop["gini@10"] > rnd["gini@10"]
    assert pop["tail@10"] == 0.0 and rnd["tail@10"] > 0.7


def test_cold_candidates(tiny_split):
    with pytest.raises(ConfigError, match="candidates='cold' needs a cold-start split"):
        Evaluator(tiny_split, ["ndcg@10"], candidates="cold")
    data = tiny_split.train.concat(tiny_split.test)
    split = cold_item_split(data, 0.3, seed=0)
    ev = Evaluator(split, ["recall@3"], candidates="cold")
    assert ev.task.candidates.sum() == len(split.cold_items) == 3
    res = ev.evaluate(Fixed().fit(split.train, split.valid))
    # only cold items are ranked, so with 3 cold items every cold test item is in the top 3
    assert np.all(res.per_user["recall@3"] == 1.0)


def test_history_policy_for_leave_one_out(data_dir):
    from lmrec.data import get_protocol

    split = get_protocol("P2", data_dir)
    ev = Evaluator(split, ["ndcg@10"])
    hist = ev.task.history
    assert hist.nnz == len(np.unique(split.train.users * split.n_items + split.train.items)) + \
        len(np.setdiff1d(split.valid.users * split.n_items + split.valid.items,
                         split.train.users * split.n_items + split.train.items))
