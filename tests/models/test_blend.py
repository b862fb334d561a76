"""Blend: the weight grid, standardisation, the validation search, prefit members, saved artifacts."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from lmrec.errors import ArtifactError, ConfigError
from lmrec.evaluation import Evaluator
from lmrec.models import EASE, Blend, ItemKNN, Recommender
from lmrec.models.blend import simplex_grid, standardise


def test_simplex_grid_covers_the_simplex():
    grid = simplex_grid(3, 0.25)
    assert grid.shape == (math.comb(4 + 2, 2), 3)
    np.testing.assert_allclose(grid.sum(1), 1.0)
    assert (grid >= 0).all() and len({tuple(r) for r in grid}) == len(grid)
    for corner in np.eye(3):
        assert any(np.allclose(r, corner) for r in grid)
    with pytest.raises(ConfigError, match="'step' parameter of Blend must divide 1"):
        simplex_grid(2, 0.3)
    with pytest.raises(ConfigError, match="at most 5000"):
        simplex_grid(6, 0.01)


def test_standardise_rows():
    s = torch.tensor([[1.0, 2.0, 3.0, -torch.inf], [5.0, 5.0, 5.0, 5.0], [float("nan")] * 4])
    z = standardise(s)
    assert torch.isfinite(z).all()
    np.testing.assert_allclose(z[0, :3].mean().item(), 0.0, atol=1e-6)
    np.testing.assert_allclose(z[0, :3].pow(2).mean().item(), 1.0, atol=1e-5)
    assert z[0, 3] == z[0, :3].min()  # -inf ranks last among the finite ones (ties the lowest)
    assert (z[1] == 0).all() and (z[2] == 0).all()


def test_search_picks_the_validation_best_and_its_corners_are_the_members(tiny_split):
    blend = Blend(members=[EASE(lam=1.0), ItemKNN(k=3)], step=0.25).fit(tiny_split.train, tiny_split.valid)
    values = [row["ndcg@10"] for row in blend.selection_]
    assert len(values) == 5
    np.testing.assert_allclose(blend.weights_, blend.selection_[int(np.argmax(values))]["weights"])
    for i, member in enumerate(blend.members_):
        alone = Evaluator(tiny_split, ["ndcg@10"], stage="valid").evaluate(member).summary()["ndcg@10"]
        corner = next(r for r in blend.selection_ if r["weights"][i] == 1.0)
        assert corner["ndcg@10"] == pytest.approx(alone, abs=1e-9)
    chosen = Evaluator(tiny_split, ["ndcg@10"], stage="valid").evaluate(blend).summary()["ndcg@10"]
    assert chosen == pytest.approx(max(values), abs=1e-9)


def test_one_member_weight_ranks_like_that_member(tiny_split):
    ease = EASE(lam=1.0).fit(tiny_split.train)
    blend = Blend(members=[ease, ItemKNN(k=3)], weights=np.array([2, 0])).fit(tiny_split.train)
    assert blend.members_[0] is ease, "a member fitted on the same data is used as it is"
    np.testing.assert_allclose(blend.weights_, [1.0, 0.0])
    assert blend.get_params()["weights"] == [2.0, 0.0]
    a, _ = blend.recommend(np.arange(20), k=4, ids="index")
    b, _ = ease.recommend(np.arange(20), k=4, ids="index")
    np.testing.assert_array_equal(a, b)


def test_unfitted_members_are_fitted_as_copies(tiny_split):
    ease = EASE(lam=1.0)
    blend = Blend(members=[ease, "itemknn"], weights=[1, 1]).fit(tiny_split.train)
    assert not ease.is_fitted and blend.members_[0].is_fitted
    assert blend.get_params()["members"] == [{"model": "ease", "params": {"lam": 1.0}},
                                             {"model": "itemknn", "params": {}}]


def test_bad_options_name_what_was_expected(tiny_split):
    train, valid = tiny_split.train, tiny_split.valid
    with pytest.raises(ConfigError, match="must list two or more models"):
        Blend(members=["ease"]).fit(train, valid)
    with pytest.raises(ConfigError, match=r"member 1 \('bpr-mf'\) does not score from the history"):
        Blend(members=["ease", "bpr-mf"]).fit(train, valid)
    with pytest.raises(ConfigError, match="Unknown Blend member model 'blend'"):
        Blend(members=["ease", "blend"]).fit(train, valid)
    with pytest.raises(ConfigError, match="member 1 is a blend; list its members"):
        Blend(members=["ease", Blend(members=["ease", "itemknn"])]).fit(train, valid)
    with pytest.raises(ConfigError, match="a Blend member must be a Recommender"):
        Blend(members=["ease", 3]).fit(train, valid)
    with pytest.raises(ConfigError, match="weights must be 2 finite numbers >= 0"):
        Blend(members=["ease", "itemknn"], weights=[1.0, -1.0]).fit(train, valid)
    with pytest.raises(ConfigError, match="must be a per-user top-K metric"):
        Blend(members=["ease", "itemknn"], metric="coverage@10").fit(train, valid)
    with pytest.raises(ConfigError, match="chooses its weights on validation data"):
        Blend(members=["ease", "itemknn"]).fit(train)


def test_member_fitted_on_other_data_is_refused(tiny_split):
    keep = np.ones(len(tiny_split.train), dtype=bool)
    keep[-1] = False
    other = EASE(lam=1.0).fit(tiny_split.train.subset(keep))
    with pytest.raises(ConfigError, match=r"member 0 \('ease'\) was fitted on other training data"):
        Blend(members=[other, "itemknn"], weights=[1, 1]).fit(tiny_split.train)


def test_saved_blend_round_trips_and_rejects_tampering(tiny_split, tmp_path):
    blend = Blend(members=[EASE(lam=1.0), ItemKNN(k=3)], step=0.5).fit(tiny_split.train, tiny_split.valid)
    blend.save(tmp_path / "b")
    loaded = Recommender.load(tmp_path / "b")
    assert isinstance(loaded, Blend) and loaded.selection_ == blend.selection_
    np.testing.assert_allclose(loaded.score(np.arange(20), ids="index"), blend.score(np.arange(20), ids="index"),
                               rtol=1e-6)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    bad = tmp_path / "bad"
    for extra, match in (({"weights": [1.0]}, "weights must be 2 finite"),
                         ({"weights": "x"}, "weights must be 2 finite")):
        shutil.copytree(tmp_path / "b", bad)
        (bad / "manifest.json").write_text(json.dumps({**manifest, "extra": extra}))
        with pytest.raises(ArtifactError, match=match):
            Recommender.load(bad)
        shutil.rmtree(bad)
    for members, match in (([{"model": "ease"}, {"model": "blend"}], "member 1 is a 'blend' model"),
                           ([{"model": "ease"}, {"model": "nope"}], "member 1 is a 'nope' model"),
                           ({"model": "ease"}, "members must be a list")):
        params = {**manifest["params"], "members": members}
        shutil.copytree(tmp_path / "b", bad)
        (bad / "manifest.json").write_text(json.dumps({**manifest, "params": params}))
        with pytest.raises(ArtifactError, match=match):
            Recommender.load(bad)
        shutil.rmtree(bad)
    shutil.copytree(tmp_path / "b", bad)
    shutil.rmtree(bad / "member-0")
    shutil.copytree(tmp_path / "b", bad / "member-0")  # a blend nested where the manifest lists EASE
    with pytest.raises(ArtifactError, match="holds a 'blend' model, not 'ease'"):
        Recommender.load(bad)
    shutil.rmtree(bad)
    shutil.copytree(tmp_path / "b", bad)
    shutil.rmtree(bad / "member-1")
    with pytest.raises(ArtifactError, match="member-1"):
        Recommender.load(bad)
    shutil.rmtree(bad / "member-0")
    shutil.copytree(tmp_path / "b" / "member-1", bad / "member-0")
    shutil.copytree(tmp_path / "b" / "member-1", bad / "member-1")
    with pytest.raises(ArtifactError, match="member-0 holds a 'itemknn' model, not 'ease'"):
        Recommender.load(bad)
