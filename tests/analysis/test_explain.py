"""Explanations: leave-one-out history shares, similarity for ID models, text fields for text models."""
from __future__ import annotations

import pytest

from lmrec.analysis import explain
from lmrec.errors import ConfigError
from lmrec.models import EASE, BPRMF, LMRanker
from lmrec.models.lm import ItemTower
from lmrec.training import TrainConfig

CFG = TrainConfig(epochs=80, batch_size=16, lr=0.05, progress=False, seed=3)


def test_leave_one_out_matches_the_score_drop(tiny_split):
    model = EASE(lam=1.0).fit(tiny_split.train)
    e = explain(model, user=0, item=3, top=10, ids="index")
    assert e.method == "leave-one-out" and {h["item"] for h in e.history} == {0, 1, 2}
    # EASE is linear in the history: the contributions add up to the score exactly
    assert sum(h["contribution"] for h in e.history) == pytest.approx(e.score, rel=1e-4)
    assert sum(h["share"] for h in e.history) == pytest.approx(1.0)
    assert e.fields == []


def test_id_models_explain_by_similarity(tiny_split):
    model = BPRMF(dim=8, reg=0.0, config=CFG).fit(tiny_split.train)
    e = explain(model, user=10, item=7, ids="index")
    assert e.method == "similarity" and len(e.history) == 3


def test_text_model_explains_fields(tiny_split):
    model = LMRanker(items=ItemTower(dim=8), cache_dir=None, config=CFG).fit(tiny_split.train)
    e = explain(model, user=0, item=3, ids="index")
    assert e.method == "leave-one-out" and e.fields[0]["field"] == "title" and e.fields[0]["value"] == "grape"
    # one field: its share is all of the positive part, or 0 when blanking it raises the score
    assert e.fields[0]["share"] in (0.0, 1.0) and e.fields[0]["contribution"] != 0.0
    with pytest.raises(ConfigError, match="item index out of range"):
        explain(model, user=0, item=99, ids="index")
