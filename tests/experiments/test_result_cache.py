"""The result cache behind compare(cache_dir=...): entries round-trip, keys separate what differs."""
from __future__ import annotations

import numpy as np
import pytest

from lmrec import compare
from lmrec.evaluation.evaluator import EvalResult
from lmrec.experiments.result_cache import ResultCache, result_key
from lmrec.models import BPRMF, MostPopular
from lmrec.training import TrainConfig


def test_an_entry_round_trips_and_a_partial_one_is_a_miss(tmp_path):
    cache = ResultCache(tmp_path / "c")
    result = EvalResult(users=np.array([3, 7]), per_user={"ndcg@10": np.array([0.5, 0.25])},
                        aggregate={"coverage@10": 0.1}, seconds=1.5, n_candidates=9)
    key = result_key("mf", "BPRMF", {"dim": 8}, 1, {"protocol": "p"}, ["ndcg@10"], "all")
    assert cache.get(key) is None
    cache.put(key, result, 12.0)
    back, fit_s = cache.get(key)
    np.testing.assert_array_equal(back.users, result.users)
    np.testing.assert_array_equal(back.per_user["ndcg@10"], result.per_user["ndcg@10"])
    assert back.aggregate == result.aggregate and back.summary() == result.summary() and fit_s == 12.0
    (tmp_path / "c" / f"{key}.json").unlink()  # the JSON is written last: without it, no entry
    assert cache.get(key) is None


def test_keys_differ_by_params_seed_split_metrics_and_candidates():
    card = {"protocol": "p", "fingerprint": "abc"}
    base = result_key("mf", "BPRMF", {"dim": 8}, 1, card, ["ndcg@10"], "all")
    assert base == result_key("mf", "BPRMF", {"dim": 8}, 1, dict(card), ["ndcg@10"], "all")
    assert len({base, result_key("mf", "BPRMF", {"dim": 16}, 1, card, ["ndcg@10"], "all"),
                result_key("mf", "BPRMF", {"dim": 8}, 2, card, ["ndcg@10"], "all"),
                result_key("mf", "BPRMF", {"dim": 8}, 1, {**card, "fingerprint": "abd"}, ["ndcg@10"], "all"),
                result_key("mf", "BPRMF", {"dim": 8}, 1, card, ["recall@10"], "all"),
                result_key("mf", "BPRMF", {"dim": 8}, 1, card, ["ndcg@10"], "cold"),
                result_key("mf/x", "BPRMF", {"dim": 8}, 1, card, ["ndcg@10"], "all")}) == 7
    assert "/" not in result_key("mf/x", "BPRMF", {}, 1, card, [], "all")


def test_compare_reuses_cached_evaluations_and_trains_only_new_models(data_dir, tmp_path, monkeypatch):
    from lmrec.data import get_protocol

    p3 = get_protocol("P3", data_dir)
    cfg = TrainConfig(epochs=1, batch_size=4096, progress=False)
    models = {"pop": MostPopular(), "mf": BPRMF(dim=8, config=cfg)}
    first = compare(models, p3, ["ndcg@10"], seeds=[1, 2], progress=False, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.json"))) == 4, "one entry per model and seed"

    def no_training(self, *a, **k):
        raise AssertionError("a cached model was trained again")

    monkeypatch.setattr(BPRMF, "fit", no_training)
    monkeypatch.setattr(MostPopular, "fit", no_training)
    again = compare(models, p3, ["ndcg@10"], seeds=[1, 2], progress=False, cache_dir=tmp_path / "cache")
    for a, b in zip(first.rows, again.rows):
        assert a.per_seed == b.per_seed and a.fit_seconds == b.fit_seconds and a.params == b.params
    assert again.rows[1].test.p_wilcoxon == pytest.approx(first.rows[1].test.p_wilcoxon)
    with pytest.raises(AssertionError, match="trained again"):  # new parameters are a miss, so they train
        compare({"mf": BPRMF(dim=16, config=cfg)}, p3, ["ndcg@10"], progress=False, cache_dir=tmp_path / "cache")
