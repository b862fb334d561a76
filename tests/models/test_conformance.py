"""One conformance battery, run against every registered model on the tiny dataset, and against
LMRanker in several named configurations of its parts (towers x scorers x ID modes x tuning)."""
from __future__ import annotations

import numpy as np
import pytest

from lmrec.errors import ArtifactError, ConfigError
from lmrec.models import EASE, MODELS, Recommender, create_model
from lmrec.models.capabilities import Factorised, NewUsers
from lmrec.models.lm import AttentionUser, Cosine, ItemTower, MeanUser, SequenceUser
from lmrec.text.options import Encoder, FullTune, LoRA
from lmrec.training import TrainConfig
from lmrec.training.negatives import Unseen

FAST_TRAIN = TrainConfig(epochs=150, batch_size=16, lr=0.05, patience=150, progress=False, seed=3)
TUNED = TrainConfig(epochs=60, batch_size=16, lr=0.05, patience=60, progress=False, seed=3)
LM = {"items": ItemTower(dim=8), "cache_dir": None, "config": FAST_TRAIN}
# tuned encoders: the tiny random BERT of conftest.tiny_encoder stands in for the model name
TINY_LORA = Encoder("tiny", tuning=LoRA(rank=4, lr=5e-3, refresh_every=2))
TINY_FULL = Encoder("tiny", tuning=FullTune(lr=1e-4, refresh_every=2))
# case -> (registered model, parameters); every registered model has a case named after it
CASES: dict[str, tuple[str, dict]] = {
    **{name: (name, {}) for name in MODELS},
    "itemknn": ("itemknn", {"k": 5}), "ease": ("ease", {"lam": 1.0}),
    "bpr-mf": ("bpr-mf", {"dim": 8, "reg": 0.0, "config": FAST_TRAIN}),
    "lightgcn": ("lightgcn", {"dim": 8, "layers": 1, "reg": 0.0, "config": FAST_TRAIN}),
    "text-knn": ("text-knn", {"cache_dir": None}),
    "implicit": ("implicit", {"dim": 8, "iterations": 200, "learning_rate": 0.05, "threads": 1}),
    "implicit[als]": ("implicit", {"algorithm": "als", "dim": 8, "iterations": 15, "threads": 1}),
    "cornac": ("cornac", {"dim": 8, "max_iter": 200, "learning_rate": 0.05}),
    "lm-ranker": ("lm-ranker", LM),
    "lm-ranker[attention,cosine,item-ids]": ("lm-ranker", {**LM, "user": AttentionUser(max_history=4),
                                                           "items": ItemTower(dim=8, ids=True),
                                                           "scorer": Cosine(0.2), "loss": "softmax"}),
    "lm-ranker[sequence,cosine,graph]": ("lm-ranker", {**LM, "user": SequenceUser(max_history=4),
                                                       "items": ItemTower(dim=8, graph_layers=1),
                                                       "scorer": Cosine(0.2), "loss": "softmax"}),
    "lm-ranker[mean,cosine,lora]": ("lm-ranker", {**LM, "encoder": TINY_LORA, "scorer": Cosine(0.2), "loss": "softmax",
                                                  "config": TUNED}),
    "lm-ranker[attention,dot,full]": ("lm-ranker", {**LM, "encoder": TINY_FULL, "user": AttentionUser(max_history=4),
                                                    "config": TUNED}),
    "lm-ranker[mean,hybrid-ids,shared-negatives]": ("lm-ranker", {
        **LM, "user": MeanUser(ids=True), "items": ItemTower(dim=8, ids=True, history_ids=True),
        "scorer": Cosine(0.2), "loss": "softmax", "negatives": Unseen(per_user=True)}),
}
BLEND_MEMBERS = [{"model": "ease", "params": {"lam": 1.0}}, {"model": "itemknn", "params": {"k": 5}}]
CASES.update({"blend": ("blend", {"members": BLEND_MEMBERS, "weights": [0.5, 0.5]}),
              "blend[lm-ranker,ease]": ("blend", {"members": [create_model("lm-ranker", **LM), EASE(lam=1.0)],
                                                  "weights": [0.7, 0.3]})})
USER_PARAMETERS = {"lm-ranker[mean,hybrid-ids,shared-negatives]"}  # a known user adds a learned ID part
PERSONALISED = {"itemknn", "ease", "bpr-mf", "lightgcn", "text-knn", "implicit", "implicit[als]", "cornac", "blend",
                "blend[lm-ranker,ease]"} \
    | {c for c, (m, _) in CASES.items() if m == "lm-ranker"}


def make(case: str) -> Recommender:
    name, params = CASES[case]
    return create_model(name, **params)


@pytest.fixture(scope="module", params=sorted(CASES))
def fitted(request, tiny_data, tiny_encoder):
    """Each case fitted once for the module (the tests only read the model); no validation data."""
    name, params = CASES[request.param]
    if "encoder" in params:
        params = {**params, "encoder": Encoder.from_dict({**params["encoder"].to_dict(), "model": tiny_encoder})}
    return request.param, create_model(name, **params).fit(tiny_data)


def test_fit_returns_self(tiny_split):
    for name in MODELS:
        model = make(name)
        assert model.fit(tiny_split.train) is model


def test_recommend_shapes_and_exclusion(fitted, tiny_split):
    name, model = fitted
    items, scores = model.recommend([0, 10, 5], k=4, ids="index")
    assert items.shape == (3, 4) and scores.shape == (3, 4)
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "scores must be sorted best first"
    seen = tiny_split.train.to_csr()
    for row, u in zip(items, [0, 10, 5]):
        assert not set(row) & set(seen[u].indices), f"{name} recommended a seen item"
        assert len(set(row)) == len(row)
    all_items, _ = model.recommend([0], k=10, exclude_seen=False, ids="index")
    assert all_items.shape == (1, 10)


def test_known_best_item(fitted):
    name, model = fitted
    items, _ = model.recommend([0, 10], k=1, ids="index")
    if name in PERSONALISED:
        assert items[:, 0].tolist() == [3, 7], f"{name} missed the held-out item of each taste group"
    elif name == "most-popular":
        pop = model.popularity_
        assert items[0, 0] == 3 or pop[items[0, 0]] >= pop[3]


def test_score_matches_recommend(fitted):
    name, model = fitted
    scores = model.score([0], ids="index")
    assert scores.shape == (1, 10) and np.isfinite(scores).all()
    items, top = model.recommend([0], k=3, ids="index")
    np.testing.assert_allclose(scores[0, items[0]], top[0], rtol=1e-5)
    sub = model.score([0], items=[3, 1], ids="index")
    np.testing.assert_allclose(sub[0], scores[0, [3, 1]])


def test_similar_items(fitted):
    name, model = fitted
    items, sims = model.similar_items([0, 4], k=3, ids="index")
    assert items.shape == (2, 3)
    assert 0 not in items[0] and 4 not in items[1]
    if name in PERSONALISED - {"text-knn"}:  # text-knn's neighbours are textual, not behavioural
        assert set(items[0]) <= {1, 2, 3, 8, 9}, f"{name}: neighbours of item 0 should be its group's items"


def test_save_load_round_trip(fitted, tmp_path):
    name, model = fitted
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert type(loaded) is type(model)
    a, sa = model.recommend(np.arange(20), k=5, ids="index")
    b, sb = loaded.recommend(np.arange(20), k=5, ids="index")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(sa, sb, rtol=1e-6)
    assert not list(tmp_path.glob(".m.tmp-*")), "temporary directory left behind"


def test_errors(fitted, tiny_split):
    name, model = fitted
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        model.recommend([0], k=0, ids="index")
    with pytest.raises(ConfigError, match="user index out of range"):
        model.recommend([99], k=2, ids="index")
    with pytest.raises(ConfigError, match="not fitted"):
        make(name).recommend([0], ids="index")


def test_history_is_used_when_supported(fitted, tiny_split):
    name, model = fitted
    if not type(model).uses_history:
        pytest.skip(f"{name} does not read a history at scoring time")
    hist = tiny_split.train.to_csr().tolil()
    hist[0, :] = 0
    hist[0, 4] = hist[0, 5] = hist[0, 6] = 1  # user 0 now looks like group B
    items, _ = model.recommend([0], k=1, history=hist.tocsr(), ids="index")
    assert items[0, 0] == 7


def test_load_rejects_corrupt(tmp_path, tiny_split):
    model = make("ease").fit(tiny_split.train)
    model.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="not a readable safetensors file"):
        Recommender.load(tmp_path / "m")
    (tmp_path / "m" / "manifest.json").write_text("{")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        Recommender.load(tmp_path / "m")


def test_bad_parameters_name_the_parameter(tiny_split):
    with pytest.raises(ConfigError, match="'loss' parameter of BPRMF must be one of 'bpr', 'hinge', 'softmax', 'bce', "
                                          "'pointwise-hinge'; got 'bprr'"):
        create_model("bpr-mf", loss="bprr").fit(tiny_split.train)
    with pytest.raises(ConfigError, match="'lam' parameter of EASE must be a number > 0"):
        create_model("ease", lam=-1).fit(tiny_split.train)
    with pytest.raises(ConfigError, match="Unknown model 'eas'; supported: random, most-popular"):
        create_model("eas")


def test_factors_reproduce_scores(fitted):
    """Where a model offers factors (for vector-index serving), U @ V.T must equal its scores."""
    name, model = fitted
    if not isinstance(model, Factorised):
        assert name in {"random", "most-popular", "itemknn", "ease", "text-knn", "blend", "blend[lm-ranker,ease]"}
        return
    u, v = model.factors()
    np.testing.assert_allclose((u @ v.T).numpy(), model.score(np.arange(model.n_users_), ids="index"), rtol=1e-4, atol=1e-4)


def test_score_history_matches_known_user(fitted, tiny_split):
    """A new user with the same history as a known one gets the same scores (history models),
    or a clear refusal (models that embed users at fit time)."""
    name, model = fitted
    history = tiny_split.train.to_csr(order=True)[10]
    items = history.indices[np.argsort(history.data)]
    if not model.uses_history:
        with pytest.raises(ConfigError, match="cannot score a new user"):
            model.score_history(items, ids="index")
        return
    if name in USER_PARAMETERS:  # the new user lacks the known user's ID part, and nothing else
        assert np.isfinite(model.score_history(items, ids="index").numpy()).all()
        return
    np.testing.assert_allclose(model.score_history(items, ids="index").numpy(), model.score([10], ids="index")[0], rtol=1e-4, atol=1e-5)
    if isinstance(model, NewUsers):  # the new user's vector is the known user's
        np.testing.assert_allclose(model.new_user_vector(items, ids="index").numpy(), model.factors()[0][10].numpy(),
                                   rtol=1e-4, atol=1e-5)
