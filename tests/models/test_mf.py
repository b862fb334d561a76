"""BPR-MF (and LightGCN, which shares its loss parts): dense and per-row steps train alike; the loss
is a part given as an object, a name or a saved dict (model specs); saved models of layout 1
(``loss`` name + ``margin``) load as layout 2, later layouts fail naming both."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lmrec.cli.spec import parse_model_spec
from lmrec.errors import ArtifactError, ConfigError
from lmrec.losses import BPR, Hinge, Softmax
from lmrec.models import BPRMF, LightGCN, Recommender, create_model
from lmrec.models import mf as mf_module
from lmrec.training import TrainConfig

QUICK = TrainConfig(epochs=6, batch_size=16, lr=0.05, n_negatives=2, progress=False, seed=4)


@pytest.mark.parametrize("loss, sampler, bias", [("softmax", "all", False), ("bpr", "uniform", True)])
def test_dense_and_per_row_scoring_train_alike(tiny_split, monkeypatch, loss, sampler, bias):
    cfg = TrainConfig(epochs=20, batch_size=16, lr=0.05, n_negatives=3, sampler=sampler, progress=False, seed=2)
    factors = {}
    for share in (0, 10**9):  # 0: every step looks rows up one by one; 10**9: every step scores densely
        monkeypatch.setattr(mf_module, "DENSE_SHARE", share)
        model = BPRMF(dim=8, reg=1e-3, loss=loss, item_bias=bias, config=cfg).fit(tiny_split.train)
        factors[share] = np.concatenate([f.numpy().ravel() for f in model.factors()])
    np.testing.assert_allclose(factors[10**9], factors[0], atol=1e-4)


def flat_factors(model: Recommender) -> np.ndarray:
    return np.concatenate([f.numpy().ravel() for f in model.factors()])  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [BPRMF, LightGCN])
def test_the_loss_part_is_resolved_once_and_trains(tiny_split, cls):
    spec_name, spec = parse_model_spec(f'{cls.name}:{{"dim": 4, "loss": {{"type": "hinge", "margin": 0.5}}}}')
    by_spec = create_model(spec_name, **spec, config=QUICK).fit(tiny_split.train)
    by_object = cls(dim=4, loss=Hinge(margin=0.5), config=QUICK).fit(tiny_split.train)
    assert by_spec.loss_ == by_object.loss_ == Hinge(margin=0.5)
    assert by_object.get_params()["loss"] == {"type": "hinge", "margin": 0.5}
    np.testing.assert_array_equal(flat_factors(by_spec), flat_factors(by_object))
    wider = cls(dim=4, loss=Hinge(margin=2.0), config=QUICK).fit(tiny_split.train)
    assert not np.allclose(flat_factors(wider), flat_factors(by_object)), "the margin must reach the loss"
    by_name = create_model(cls.name, **parse_model_spec(f"{cls.name}:dim=4,loss=softmax")[1], config=QUICK)
    assert by_name.fit(tiny_split.train).loss_ == Softmax()
    assert cls(config=QUICK).fit(tiny_split.train).loss_ == BPR()


@pytest.mark.parametrize("cls", [BPRMF, LightGCN])
def test_bad_losses_are_named(tiny_split, cls):
    owner = cls.__name__
    with pytest.raises(ConfigError, match=f"'loss' parameter of {owner} must be one of 'bpr', 'hinge'.*got 'hing'"):
        cls(loss="hing", config=QUICK).fit(tiny_split.train)
    with pytest.raises(ConfigError, match="'margin' parameter of Hinge must be a number > 0; got 0"):
        cls(loss={"type": "hinge", "margin": 0}, config=QUICK).fit(tiny_split.train)
    with pytest.raises(ConfigError, match=rf"Bad parameters for model '{cls.name}'.*it takes \[.*'loss'"):
        create_model(cls.name, loss="hinge", margin=0.5)  # the margin belongs to the Hinge part now


def saved_as_layout(model: Recommender, folder, layout: int, **params) -> None:
    """Save ``model``, then rewrite its manifest as an lmrec of ``layout`` would have saved it."""
    model.save(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["layout"] = layout
    manifest["params"] = {k: v for k, v in {**manifest["params"], **params}.items() if v is not None}
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("cls", [BPRMF, LightGCN])
def test_layout_1_models_load_with_their_loss_as_a_part(tiny_split, tmp_path, cls):
    model = cls(dim=4, loss=Hinge(margin=0.5), config=QUICK).fit(tiny_split.train)
    saved_as_layout(model, tmp_path / "hinge", 1, loss="hinge", margin=0.5)
    loaded = Recommender.load(tmp_path / "hinge")
    assert loaded.get_params()["loss"] == {"type": "hinge", "margin": 0.5} and "margin" not in loaded.get_params()
    a, b = model.recommend(np.arange(20), k=4, ids="index"), loaded.recommend(np.arange(20), k=4, ids="index")
    np.testing.assert_array_equal(a[0], b[0])
    loaded.save(tmp_path / "again")  # saved again in the current layout
    assert json.loads((tmp_path / "again" / "manifest.json").read_text())["layout"] == cls.layout == 2
    saved_as_layout(model, tmp_path / "bpr", 1, loss="bpr", margin=1.0)
    assert Recommender.load(tmp_path / "bpr").get_params()["loss"] == "bpr"
    saved_as_layout(model, tmp_path / "default", 1, loss=None)  # layout 1 with the defaults left out
    assert Recommender.load(tmp_path / "default").get_params()["loss"] == "bpr"


@pytest.mark.parametrize("cls", [BPRMF, LightGCN])
def test_a_later_layout_fails_naming_both(tiny_split, tmp_path, cls):
    saved_as_layout(cls(dim=4, config=QUICK).fit(tiny_split.train), tmp_path / "m", 3)
    with pytest.raises(ArtifactError, match=rf"holds a '{cls.name}' model of layout 3 .* reads '{cls.name}' layout 2"):
        Recommender.load(tmp_path / "m")
