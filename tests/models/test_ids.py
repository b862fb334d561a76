"""Raw ids in the Python API: MovieLens-style ids in and out, indices only when asked for."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.analysis import explain
from lmrec.data import Interactions
from lmrec.errors import ConfigError
from lmrec.models import EASE, LMRanker
from lmrec.models.ids import IdMap
from lmrec.models.lm import ItemTower
from lmrec.training import TrainConfig


@pytest.fixture(scope="module")
def shifted(tiny_data) -> Interactions:
    """The tiny taste groups with item ids 100..109 and user ids 1..20: raw ids differ from indices."""
    d = tiny_data
    frame = pd.DataFrame({"user": d.users + 1, "item": d.items + 100, "rating": d.ratings, "timestamp": d.timestamps})
    items = pd.DataFrame({"item": np.arange(100, 110), "title": d.item_table["title"].tolist()})
    return Interactions.from_frame(frame, item_table=items, name="shifted")


def test_recommend_takes_and_returns_raw_ids(shifted):
    model = EASE(lam=1.0).fit(shifted)
    items, scores = model.recommend([1, 11], k=1)  # user ids 1 and 11 are indices 0 and 10
    assert items[:, 0].tolist() == [103, 107]
    index_items, index_scores = model.recommend([0, 10], k=1, ids="index")
    assert index_items[:, 0].tolist() == [3, 7] and np.allclose(scores, index_scores)
    np.testing.assert_allclose(model.score([1], items=[103, 100]), model.score([0], items=[3, 0], ids="index"))
    similar, _ = model.similar_items([100], k=3)
    assert set(similar[0].tolist()) <= {101, 102, 103, 108, 109}
    with pytest.raises(ConfigError, match=r"unknown user id 99: not among the model's 20 users \(pass ids='index'"):
        model.recommend([99])
    with pytest.raises(ConfigError, match="unknown item id 5"):
        model.score([1], items=[5])
    with pytest.raises(ConfigError, match="user index out of range"):
        model.recommend([20], ids="index")
    with pytest.raises(ConfigError, match="'ids' parameter of the model must be one of 'raw', 'index'; got 'rows'"):
        model.recommend([1], ids="rows")


def test_text_model_new_users_new_items_and_explanations_speak_raw_ids(shifted):
    cfg = TrainConfig(epochs=120, batch_size=16, lr=0.05, progress=False, seed=3)
    model = LMRanker(items=ItemTower(dim=8), cache_dir=None, config=cfg).fit(shifted)
    items, _ = model.recommend_for_history([104, 105, 106], k=1)
    assert items.tolist() == [107], "MovieLens-style ids are read as ids, not as indices"
    assert model.add_items(pd.DataFrame({"item": [500], "title": ["mango"]})).tolist() == [500]
    assert model.add_items(pd.DataFrame({"item": [500], "title": ["mango"]}), ids="index").tolist() == [10]
    e = explain(model, user=1, item=103, top=3)
    assert e.user == 1 and e.item == 103 and {h["item"] for h in e.history} <= {100, 101, 102}


def test_id_map_matches_by_value():
    ids = IdMap(np.asarray([260, 1196, 541]), "item")
    assert ids.indices([np.int64(541), 260.0, 1196]).tolist() == [2, 0, 1]
    text = IdMap(np.asarray(["B00X", "A7"], dtype=object), "item")
    assert text.indices(["A7"]).tolist() == [1] and text.ids(np.array([[0, 1]])).tolist() == [["B00X", "A7"]]
