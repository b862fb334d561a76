"""LMRanker beyond the shared contract: parts, cold items and users, reloads, old layouts, errors."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lmrec.errors import ArtifactError, ConfigError
from lmrec.losses import Hinge
from lmrec.models import LMRanker, Recommender
from lmrec.models.lm import AttentionUser, Cosine, ItemTower, MeanUser, SequenceUser
from lmrec.models.lm.upgrade import upgrade_layout2
from lmrec.text.options import Encoder, Frozen, FullTune, LoRA
from lmrec.training import Hard, TrainConfig, Uniform, Unseen

CFG = TrainConfig(epochs=120, batch_size=16, lr=0.05, progress=False, seed=3)


def fit(tiny_split, **kw):
    kw.setdefault("items", ItemTower(dim=8))
    return LMRanker(cache_dir=None, config=kw.pop("config", CFG), **kw).fit(tiny_split.train)


def resolved(model: LMRanker) -> tuple:
    model._resolve()
    return model.encoder_, model.items_, model.user_, model.scorer_, model.loss_, model.negatives_


def learns_groups(model) -> bool:
    scores = model.score([0, 10], ids="index")
    return scores[0, 3] > scores[0, 4:8].max() and scores[1, 7] > scores[1, 0:4].max()


@pytest.mark.parametrize("parts", [
    {"user": "attention"}, {"user": SequenceUser(max_history=4)}, {"items": ItemTower(dim=8, graph_layers=2)},
    {"items": ItemTower(dim=8, ids=True), "user": MeanUser(ids=True)}, {"items": ItemTower(dim=8, ids=True)},
    {"scorer": Cosine(), "loss": "softmax"}, {"loss": Hinge(margin=0.5), "items": ItemTower(dim=8, projection="mlp")},
    {"user": MeanUser(history_dropout=0.3)}, {"items": ItemTower(dim=8, ids=True, history_ids=True)},
], ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
def test_parts_learn_the_taste_groups(tiny_split, parts):
    assert learns_groups(fit(tiny_split, **parts))


def test_shorthands_and_saved_forms_give_the_same_parts(tiny_split):
    short = LMRanker(items="mlp", user="sequence", scorer="cosine", loss="hinge", cache_dir=None)
    params = short.get_params()
    assert params["user"] == "sequence" and params["items"] == "mlp"
    full = LMRanker(items=ItemTower(projection="mlp"), user=SequenceUser(), scorer=Cosine(), loss=Hinge(),
                    cache_dir=None)
    saved = json.loads(json.dumps(full.get_params()))  # what a manifest holds
    assert saved["user"] == {"type": "sequence", "ids": False, "max_history": 50, "layers": 2, "heads": 2,
                             "dropout": 0.1}
    assert resolved(LMRanker(**saved)) == resolved(short) == resolved(full)


def test_unseen_item_with_text_is_scored_and_ranked(tiny_split, tmp_path):
    model = fit(tiny_split)
    new = model.add_items(pd.DataFrame({"item": [100, 101], "title": ["mango", "chisel"]}), ids="index")
    assert new.tolist() == [10, 11] and model.n_items_ == 12
    items, _ = model.recommend([0, 10], k=12, ids="index")
    fruit_user, tool_user = items[0].tolist(), items[1].tolist()
    assert fruit_user.index(10) < fruit_user.index(11), "a fruit lover should rank the new fruit above the new tool"
    assert tool_user.index(11) < tool_user.index(10)
    model.save(tmp_path / "m")  # the grown catalogue survives a save / load
    back = Recommender.load(tmp_path / "m")
    np.testing.assert_allclose(back.score([0], ids="index"), model.score([0], ids="index"), rtol=1e-5)
    assert back.item_ids_.tolist()[-2:] == [100, 101]


def test_new_items_get_zero_id_parts_and_updates_keep_their_index(tiny_split):
    model = fit(tiny_split, items=ItemTower(dim=8, ids=True, history_ids=True, graph_layers=1))
    index = model.add_items(pd.DataFrame({"item": [100, 3], "title": ["mango", "grapefruit"]}), ids="index")
    assert index.tolist() == [10, 3] and model.n_items_ == 11
    tower = model.net_.items
    assert tower.item_id.weight.shape[0] == tower.history_id.weight.shape[0] == 11
    assert tower.item_id.weight[10].abs().sum() == 0 and tower.history_id.weight[10].abs().sum() == 0
    assert np.isfinite(model.score([0], ids="index")[0]).all() and model.item_text(3) == "grapefruit"


def test_new_users_from_history_and_profile(tiny_split):
    model = fit(tiny_split)
    items, _ = model.recommend_for_history([4, 5, 6], k=1, ids="index")
    assert items.tolist() == [7]
    items, _ = model.recommend_for_profile("I love fresh fruit", k=4, ids="index")
    assert len(set(items.tolist()) & {0, 1, 2, 3}) >= 3
    with pytest.raises(ConfigError, match="needs at least one item"):
        model.recommend_for_history([], ids="index")


def test_new_user_vector_is_the_known_users_vector_for_the_same_history(tiny_split):
    for user in ("mean", AttentionUser(), SequenceUser(max_history=4)):
        model = fit(tiny_split, user=user, scorer=Cosine(), loss="softmax", config=TrainConfig(epochs=3,
                                                                                                progress=False))
        row = tiny_split.train.to_csr(order=True)[10]
        items = row.indices[np.argsort(row.data)]
        users, item_factors = model.factors()
        torch.testing.assert_close(model.new_user_vector(items, ids="index"), users[10], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(item_factors @ users[10], torch.as_tensor(model.score([10], ids="index")[0]), rtol=1e-4,
                                   atol=1e-5)


def test_reload_gives_identical_scores(tiny_split, tmp_path):
    model = fit(tiny_split, items=ItemTower(dim=8, ids=True, graph_layers=1),
                user=SequenceUser(max_history=4, ids=True, dropout=0.3))
    model.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    np.testing.assert_allclose(back.score(np.arange(20), ids="index"), model.score(np.arange(20), ids="index"), rtol=1e-5, atol=1e-6)
    assert back.item_text(0) == "apple"
    rates = {m.p for m in back.net_.users.net.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.3}, "the reloaded tower keeps the dropout it was trained with"


def test_models_of_the_old_layout_fail_with_a_clear_message(tiny_split, tmp_path):
    fit(tiny_split, config=TrainConfig(epochs=1, progress=False)).save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    manifest.pop("layout")  # as lmrec 0.1 wrote it, with its flat parameters
    manifest.pop("lmrec_version")
    manifest["params"] = {"dim": 8, "user_tower": "mean", "id_mode": "none", "heads": 1}
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"'lm-ranker' model of layout 1 \(saved by lmrec 0.1.0\); this lmrec "
                                            r"\(0.2.0\) reads 'lm-ranker' layout 3. Retrain it"):
        Recommender.load(tmp_path / "m")


LAYOUT2 = {"encoder": {"model": "minilm", "backend": "hf", "pooling": "auto", "max_length": 128, "batch_size": 64,
                       "tune": "frozen", "lora": {"rank": 8, "alpha": 16.0, "dropout": 0.05, "targets": None},
                       "lr": None, "grad_items": 256, "refresh_every": 100, "checkpointing": False,
                       "dtype": "float32", "device": None},
           "user": {"type": "mean", "ids": False, "history_dropout": 0.0, "shared_negatives": True}}


def test_models_of_layout_2_load_with_their_tuning_and_negatives_as_parts(tiny_split, tmp_path):
    model = fit(tiny_split, encoder=Encoder(), scorer=Cosine(), loss="softmax",
                negatives=Unseen(pool="train-items", per_user=True),
                config=TrainConfig(epochs=2, batch_size=16, progress=False))
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    params = manifest["params"]
    assert manifest["layout"] == 3 and params["encoder"]["tuning"] == {"type": "frozen"}
    # as layout 2 wrote it: flat encoder fields, negatives in the config, the per-user softmax in the tower
    manifest["layout"] = 2
    params.pop("negatives")
    params["encoder"] = {**LAYOUT2["encoder"], "model": params["encoder"]["model"]}
    params["user"] = LAYOUT2["user"]
    params["config"] = {**params["config"], "sampler": "unseen", "negative_pool": "train-items", "n_negatives": 1}
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    back = Recommender.load(tmp_path / "m")
    assert back.get_params()["negatives"] == {"type": "unseen", "pool": "train-items", "per_user": True}
    assert back.get_params()["user"] == {"type": "mean", "ids": False, "history_dropout": 0.0}
    assert back.text_side().options.tuning == Frozen()
    np.testing.assert_allclose(back.score(np.arange(20), ids="index"), model.score(np.arange(20), ids="index"),
                               rtol=1e-5, atol=1e-6)
    again = back.fit(tiny_split.train)  # the converted parameters train as they are
    assert again.training_parts().negatives == Unseen(pool="train-items", per_user=True)


def test_layout_2_parameters_convert_field_by_field():
    lora = {**LAYOUT2["encoder"], "tune": "lora", "lora": {"rank": 4, "alpha": 8.0, "dropout": 0.0,
                                                             "targets": ["query"]}, "lr": 5e-4, "grad_items": 32}
    got = upgrade_layout2({"encoder": lora, "user": "sequence",
                           "config": {"sampler": "hard", "n_negatives": 4, "hard_pool": 3, "lr": 0.01}})
    assert got["encoder"]["tuning"] == {"type": "lora", "lr": 5e-4, "grad_items": 32, "refresh_every": 100,
                                        "checkpointing": False, "rank": 4, "alpha": 8.0, "dropout": 0.0,
                                        "targets": ["query"]}
    assert Encoder.from_dict(got["encoder"]).tuning == LoRA(4, 8.0, 0.0, ["query"], lr=5e-4, grad_items=32)
    assert got["negatives"] == {"type": "hard", "n": 4, "pool": "all-items", "factor": 3}
    assert got["config"] == {"lr": 0.01} and got["user"] == "sequence"
    assert upgrade_layout2({"encoder": "mpnet"}) == {"encoder": "mpnet", "config": None,
                                                      "negatives": {"type": "uniform", "n": 1, "pool": "all-items"}}
    with pytest.raises(ConfigError, match=r"Encoder fields \['grad_items', 'tune'\] moved into its tuning part; "
                                          r"write \{'type': 'full', 'grad_items': 8\} as 'tuning'"):
        Encoder.from_dict({"model": "minilm", "tune": "full", "grad_items": 8})


def test_user_text_is_used(data_dir):
    from lmrec.data import get_protocol

    split = get_protocol("P3", data_dir)
    model = LMRanker(items=ItemTower(dim=8), cache_dir=None, config=TrainConfig(epochs=1, progress=False))
    model.fit(split.train)
    assert model.text_.user_template.startswith("Gender:") and model.net_.users.user_proj is not None


def test_errors_name_the_part_and_the_value(tiny_split):
    with pytest.raises(ConfigError, match="'user' parameter of LMRanker must be one of 'mean', 'attention', "
                                          "'sequence'; got 'gru'"):
        fit(tiny_split, user="gru")
    with pytest.raises(ConfigError, match="'scorer' parameter of LMRanker must be one of 'dot', 'cosine'; got 'l2'"):
        fit(tiny_split, scorer={"type": "l2"})
    with pytest.raises(ConfigError, match="'temperature' parameter of Cosine must be a number > 0; got 0"):
        fit(tiny_split, scorer=Cosine(temperature=0))
    with pytest.raises(ConfigError, match=r"The item template uses field\(s\) \['brand'\] that the item table lacks"):
        fit(tiny_split, item_template="{title} by {brand}")
    with pytest.raises(ConfigError, match="Could not load encoder 'nope/nothing'"):
        fit(tiny_split, encoder="nope/nothing")
    with pytest.raises(ConfigError, match=r"'dropout' parameter of ItemTower must be a number in \[0.0, 1.0\); got 1.0"):
        fit(tiny_split, items=ItemTower(dropout=1.0))
    with pytest.raises(ConfigError, match=r"'history_dropout' parameter of MeanUser must be a number in \[0.0, 1.0\)"):
        fit(tiny_split, user=MeanUser(history_dropout=-0.1))
    with pytest.raises(ConfigError, match="history_ids=True needs item IDs"):
        fit(tiny_split, items=ItemTower(history_ids=True))
    with pytest.raises(ConfigError, match="Unknown SequenceUser field"):
        fit(tiny_split, user={"type": "sequence", "history": 3})
    with pytest.raises(ConfigError, match="'tuning' parameter of Encoder must be one of 'frozen', 'lora', 'full'; "
                                          "got 'half'"):
        fit(tiny_split, encoder=Encoder(tuning="half"))
    with pytest.raises(ConfigError, match=r"Unseen\(per_user=True\) needs user='mean' and loss='softmax'; "
                                          "got user='mean' and loss='bpr'"):
        fit(tiny_split, negatives=Unseen(per_user=True))
    with pytest.raises(ConfigError, match="'negatives' parameter of LMRanker must be one of 'uniform', 'popularity', "
                                          "'in-batch', 'hard', 'all', 'unseen'; got 'hardest'"):
        fit(tiny_split, negatives="hardest")
    with pytest.raises(ConfigError, match=r"LMRanker takes its negatives as a part, not TrainConfig's \['sampler', "
                                          r"'n_negatives'\]: give negatives=\{'type': 'hard', 'n': 4"):
        fit(tiny_split, config=TrainConfig(sampler="hard", n_negatives=4))
    bare = tiny_split.train
    bare.item_table = pd.DataFrame(index=range(10))
    with pytest.raises(ConfigError, match="LMRanker needs item text, but the item table of 'tiny' has no field"):
        LMRanker(cache_dir=None).fit(bare)


@pytest.mark.parametrize("part, message", [
    (ItemTower(dim=0), r"'dim' parameter of ItemTower must be a number >= 1; got 0"),
    (ItemTower(projection="deep"), r"'projection' parameter of ItemTower must be one of 'linear', 'mlp'; got 'deep'"),
    (ItemTower(graph_layers=-1), r"'graph_layers' parameter of ItemTower must be a number >= 0; got -1"),
    (AttentionUser(max_history=0), r"'max_history' parameter of AttentionUser must be a number >= 1; got 0"),
    (SequenceUser(heads=0), r"'heads' parameter of SequenceUser must be a number >= 1; got 0"),
    (SequenceUser(dropout=1.5), r"'dropout' parameter of SequenceUser must be a number in \[0.0, 1.0\); got 1.5"),
    (MeanUser(history_dropout=1.0), r"'history_dropout' parameter of MeanUser must be a number in \[0.0, 1.0\)"),
    (Cosine(temperature=-1), r"'temperature' parameter of Cosine must be a number > 0; got -1"),
    (Hinge(margin=0), r"'margin' parameter of Hinge must be a number > 0; got 0"),
    (Encoder(max_length=0), r"'max_length' parameter of Encoder must be a number >= 1; got 0"),
    (Encoder(pooling="max"), r"'pooling' parameter of Encoder must be one of 'auto', 'mean', 'cls', 'last'; got 'max'"),
    (Encoder(tuning=LoRA(refresh_every=-1)), r"'refresh_every' parameter of LoRA must be a number >= 0; got -1"),
    (Encoder(tuning=FullTune(lr=0.0)), r"'lr' parameter of FullTune must be a number > 0; got 0.0"),
    (Uniform(n=0), r"'n' parameter of Uniform must be a number >= 1; got 0"),
    (Hard(factor=0), r"'factor' parameter of Hard must be a number >= 1; got 0"),
    (Unseen(pool="warm"), r"'pool' parameter of Unseen must be one of 'all-items', 'train-items'; got 'warm'"),
    (TrainConfig(grad_accum=0), r"'grad_accum' parameter of TrainConfig must be a number > 0; got 0"),
    (TrainConfig(negative_pool="warm"), r"'negative_pool' parameter of TrainConfig must be one of 'all-items', "
                                        r"'train-items'; got 'warm'"),
], ids=lambda x: type(x).__name__ if not isinstance(x, str) else "")
def test_every_part_validates_its_options(part, message):
    with pytest.raises(ConfigError, match=message):
        part.validate()


@pytest.mark.parametrize("dim", [384, None])  # None: the encoder's text size, whatever the encoder
def test_identity_init_starts_as_text_knn(tiny_split, tmp_path, dim):
    from lmrec.models import TextKNN

    untrained = LMRanker(items=ItemTower(dim=dim, identity_init=True), scorer=Cosine(1.0), cache_dir=None,
                         config=TrainConfig(epochs=1, lr=1e-12, progress=False)).fit(tiny_split.train)
    knn = TextKNN(cache_dir=None).fit(tiny_split.train)
    np.testing.assert_allclose(untrained.score(["u00", "u10"]), knn.score(["u00", "u10"]), rtol=1e-4, atol=1e-4)
    untrained.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.get_params()["items"]["dim"] == dim
    np.testing.assert_array_equal(loaded.score(["u00", "u10"]), untrained.score(["u00", "u10"]))
    with pytest.raises(ConfigError, match="identity_init=True needs dim equal to the text size 384; got dim=8"):
        fit(tiny_split, items=ItemTower(dim=8, identity_init=True))


@pytest.mark.parametrize("name", ["sequential", "warm", "cold-start"])
def test_presets_train_and_round_trip(tiny_split, tmp_path, name):
    from lmrec.models import create_model

    small = {"config": {"epochs": 2, "batch_size": 16}, "cache_dir": None}
    model = LMRanker.preset(name, **small).fit(tiny_split.train, tiny_split.valid)
    assert model.get_params()["config"]["plateau_decay"] == 0.5, "the preset's training settings are kept"
    model.save(tmp_path / "m")
    np.testing.assert_allclose(Recommender.load(tmp_path / "m").score(["u00"]), model.score(["u00"]), rtol=1e-5)
    assert create_model("lm-ranker", preset=name, **small).get_params() == model.get_params()
    with pytest.raises(ConfigError, match="Unknown LMRanker preset 'hot'; supported: sequential, warm, cold-start"):
        LMRanker.preset("hot")
