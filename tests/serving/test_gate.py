"""The promotion gate's evidence the event stream cannot forge: the fixed holdout, reach, fake new users.

The round-level tests run a real ``lmrec serve`` on an EASE model of MovieLens 100K, post the round
through ``POST /events`` and run ``lmrec retrain`` on its SQLite store (rounds: tests/serving/rounds.py).
"""
from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from lmrec.cli import main
from lmrec.data import save_split
from lmrec.errors import ConfigError
from lmrec.models import EASE
from lmrec.models.base import Recommender
from lmrec.serving.events import Event, SQLiteEventStore
from lmrec.serving.gate import exposure_jumps, popularity_jumps, reach, round_events
from lmrec.serving.retrain import RetrainConfig, retrain
from lmrec.storage.versions import Holdout, ModelStore
from tests.conftest import tiny_interactions
from tests.serving.conftest import API_KEY
from tests.serving.rounds import average_attack, build_world, honest_round

OLD_CHECKS = ["--no-trusted-gate", "--no-exposure-check", "--no-detect-fakes"]


@pytest.fixture(scope="module")
def world(data_dir, tmp_path_factory):
    return build_world(data_dir, tmp_path_factory.mktemp("world"))


def post(url: str, events: list[dict[str, str]]) -> None:
    with httpx.Client(timeout=60, headers={"X-API-Key": API_KEY}) as client:
        for lo in range(0, len(events), 1000):
            r = client.post(url + "/events", json={"events": events[lo: lo + 1000]})
            assert r.status_code == 200, r.text


def served_round(world, serve, tmp_path, capsys, name: str, events: list[dict[str, str]], *publish: str):
    """A store published from the world's model, a server on it, the round posted; returns (store, db)."""
    store, db = tmp_path / name, tmp_path / f"{name}.db"
    assert main(["publish", str(world.model_dir), str(store), *publish]) == 0
    capsys.readouterr()
    server = serve(store, events=db)
    post(server.url, events)
    server.stop()
    return store, db


def run_retrain(store, db, capsys, *flags: str) -> tuple[int, dict]:
    """``lmrec retrain`` on the store; its exit code and JSON (the scores are shown with ``pytest -s``)."""
    code = main(["retrain", "--model", str(store), "--events", str(db), *flags])
    out = json.loads(capsys.readouterr().out)
    with capsys.disabled():
        shown = {k: out[k] for k in ("promoted", "refused_by", "current_score", "candidate_score",
                                     "trusted_current_score", "trusted_candidate_score", "exposure")}
        print(f"\n{store.name} {' '.join(flags)}: {json.dumps({**shown, 'suspects': out['suspects']})}")
    return code, out


def test_an_average_attack_is_refused_by_the_checks_it_cannot_forge(world, serve, tmp_path, capsys):
    """300 fakes following item popularity push 6 mid-popular targets (about 230 events each, under
    the popularity-jump check), known users push them too, and a burst of known users clicking them
    comes last: the newest events reward the poisoned candidate. The old checks promote it; the
    trusted holdout disagrees and the targets' reach in top-10 lists jumps, so it is refused."""
    events = average_attack(world)
    store, db = served_round(world, serve, tmp_path, capsys, "attack", events, "--holdout", str(world.split_dir))
    code, out = run_retrain(store, db, capsys)
    assert code == 3 and not out["promoted"] and ModelStore(store).current() == "v0001"
    assert out["events"]["read"] == len(events) == 15000 and out["flagged"] == [], "no item trips the jump check"
    assert {"exposure_jump", "holdouts_disagree"} <= set(out["refused_by"])
    assert "the two holdouts disagree" in out["reason"] and "reach jump in the candidate's top-k lists" in out["reason"]
    assert out["candidate_score"] > out["current_score"], "the newest events reward the poisoned candidate"
    assert out["trusted_candidate_score"] < out["trusted_current_score"]
    assert out["trusted"]["baseline"] == "current" and out["trusted"]["pairs"] == 9325
    reached = {f["item"] for f in out["exposure"]}
    assert reached and reached <= set(world.targets), "only targets' reach jumps"
    assert all(f["after"] >= 2 * (f["before"] + 1) for f in out["exposure"])
    assert out["suspects"]["checked"] == 300 + 57  # fakes and the honest new users of the real traffic
    # the same round under the old checks alone is promoted: the new checks are what refuse it
    code, old = run_retrain(store, db, capsys, *OLD_CHECKS)
    assert code == 0 and old["promoted"] and old["refused_by"] == [] and ModelStore(store).current() == "v0002"
    assert old["candidate_score"] > old["current_score"] and old["trusted_current_score"] is None
    assert old["events"]["trusted_pairs"] == out["events"]["trusted_pairs"] > 0, "a stored holdout is never learnt"


def test_an_honest_round_of_as_many_events_is_promoted(world, serve, tmp_path, capsys):
    """15,000 real events (new users' interactions and known users' next ones, in time order)."""
    events = honest_round(world)
    store, db = served_round(world, serve, tmp_path, capsys, "honest", events, "--holdout", str(world.split_dir))
    code, out = run_retrain(store, db, capsys)
    assert code == 0 and out["promoted"], out["reason"]
    assert len(events) == 15000 and out["refused_by"] == [] and out["exposure"] == [] and out["flagged"] == []
    assert out["suspects"]["checked"] == 60 and out["suspects"]["flagged"] == 0, "no honest new user is flagged"
    assert out["trusted_candidate_score"] > out["trusted_current_score"] and "on both holdouts" in out["reason"]
    promoted = Recommender.load(ModelStore(store).current_path())
    assert promoted.manifest_["metrics"]["trusted_ndcg@10"] == pytest.approx(out["trusted_candidate_score"])


def test_a_store_without_a_holdout_samples_one_before_reading_events_and_keeps_it(world, tmp_path):
    """Round 1 (honest) samples each known user's holdout pair among their newest training fifth and
    compares against a control fitted without the round (the current model trained on those pairs);
    the promoted version never trained on them. Round 2 (the attack) reuses the same pairs, now against
    the current model itself, and is refused."""
    store = ModelStore(tmp_path / "store")
    store.publish(Recommender.load(world.model_dir))
    db = SQLiteEventStore(tmp_path / "events.db")
    db.append([Event(e["user"], e["item"], "click", 1.0, 2e9) for e in honest_round(world)])
    first = retrain(store, db)
    assert first.promoted, first.reason
    assert first.trusted["baseline"].startswith("control") and first.trusted["pairs"] == world.known.n_users
    held = store.load_holdout()
    assert held.source == "sampled from v0001's training interactions" and len(held) == world.known.n_users
    promoted = Recommender.load(store.current_path())
    coo = promoted.train_matrix_.tocoo()
    trained = set(zip(promoted.user_ids_[coo.row].astype(str), promoted.item_ids_[coo.col].astype(str)))
    assert not trained & set(zip(held.users.astype(str), held.items.astype(str))), "holdout pairs are never learnt"
    db.append([Event(e["user"], e["item"], "click", 1.0, 2e9) for e in average_attack(world)])
    second = retrain(store, db)
    assert not second.promoted and "exposure_jump" in second.refused_by and second.trusted["baseline"] == "current"
    assert store.load_holdout().items.tolist() == held.items.tolist(), "the holdout is fixed once"


# ----------------------------------------------------------------------------- the pieces
@pytest.fixture
def ease_store(tmp_path) -> ModelStore:
    store = ModelStore(tmp_path / "models")
    store.publish(EASE(lam=1.0).fit(tiny_interactions()))
    return store


def frame(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    n = len(pairs)
    return pd.DataFrame({"id": np.arange(1, n + 1), "user": [u for u, _ in pairs], "item": [i for _, i in pairs],
                         "type": "click", "value": 1.0, "timestamp": 0.0, "received": np.arange(n, dtype=float)})


def test_repeated_pairs_count_once_for_caps_and_jumps(ease_store):
    model = Recommender.load(ease_store.current_path())
    cfg = RetrainConfig(max_user_events=5, jump_min=20)
    flood = [("a", "9"), ("a", "8")] * 30 + [("a", str(i)) for i in range(5)]
    usable, counts = round_events(frame(flood), model, cfg, set())
    assert counts["duplicates"] == 58 and counts["over_caps"] == 2 and len(usable) == 5
    assert usable["item"].tolist() == ["9", "8", "0", "1", "2"], "the first of each pair, in received order"
    assert popularity_jumps(frame([("a", "9")] * 30), model, cfg) == [], "one user is one event, however repeated"
    many = popularity_jumps(frame([(f"b{u}", "9") for u in range(30)]), model, cfg)
    assert many[0]["item"] == "9" and many[0]["events"] == 30


def test_trusted_pairs_are_left_out_of_the_round_and_of_training(ease_store, tmp_path):
    ease_store.save_holdout(Holdout(np.array(["u01", "u11"]), np.array([9, 8]), "by hand"))
    events = SQLiteEventStore(tmp_path / "events.db")
    events.append([Event(f"new{u}", str(i), "click", 1.0, 2e9) for u in range(10) for i in (0, 1, 2, 8)])
    events.append([Event("u01", "9", "click", 1.0, 2e9), Event("u11", "8", "click", 1.0, 2e9)])
    events.append([Event(f"u{u:02d}", "8", "click", 1.0, 2e9) for u in range(10)])
    result = retrain(ease_store, events, RetrainConfig(margin=1.0, min_events=10, accept_jumps=("8",)))
    assert result.events["trusted_pairs"] == 2 and result.trusted["source"] == "by hand", result.reason
    assert result.trusted["baseline"] == "current" and result.trusted["pairs"] == 2
    assert result.promoted, result.reason
    model = Recommender.load(ease_store.current_path())
    for user, item in (("u01", 9), ("u11", 8)):
        row = model.train_matrix_[model.user_indices([user])[0]]
        assert model.item_indices([item])[0] not in row.indices


def test_the_holdout_is_fixed_before_any_event_is_read(ease_store, tmp_path):
    class Watching(SQLiteEventStore):
        def events(self, after_id: int = 0) -> pd.DataFrame:
            assert ease_store.has_holdout(), "events were read before the holdout was fixed"
            return super().events(after_id)

    result = retrain(ease_store, Watching(tmp_path / "events.db"), RetrainConfig())
    assert "usable new events" in result.reason and ease_store.has_holdout()


def test_reach_counts_the_top_k_lists(ease_store):
    model = Recommender.load(ease_store.current_path())
    users = np.arange(model.n_users_)
    hist = model.train_matrix_
    counts = reach(model, hist, hist, users, 2, model.n_items_)
    top, _ = model.recommend(users, k=2, ids="index")
    np.testing.assert_array_equal(counts, np.bincount(top.reshape(-1), minlength=model.n_items_))
    assert counts.sum() == 2 * len(users)


def test_exposure_jumps_need_the_factor_and_the_gain():
    cfg = RetrainConfig(exposure_factor=2.0, exposure_gain=0.1, accept_jumps=("d",))
    before = np.array([0, 50, 3, 0, 20])
    after = np.array([12, 70, 9, 40, 45])
    flagged = exposure_jumps(before, after, np.array(["a", "b", "c", "d", "e"]), 100, cfg)
    # a: +12 users and 12 >= 2 x 1; b: 70 < 2 x 51; c: +6 < 10; d: accepted; e: +25 and 45 >= 42
    assert [f["item"] for f in flagged] == ["e", "a"] and flagged[0] == {"item": "e", "before": 20, "after": 45,
                                                                         "users": 100}


@pytest.mark.parametrize("field, value, message", [
    ("exposure_gain", 0.0, r"'exposure_gain' parameter of RetrainConfig must be a share in \(0, 1\)"),
    ("trusted_recent", 1.5, r"'trusted_recent' parameter of RetrainConfig must be a share in \(0, 1\]"),
    ("exposure_factor", -1, "'exposure_factor' parameter of RetrainConfig must be a number > 0"),
    ("noise_z", -0.5, "'noise_z' parameter of RetrainConfig must be a number >= 0"),
    ("trusted_users", 0, "'trusted_users' parameter of RetrainConfig must be a number > 0"),
    ("metric", "ndgc@10", "ndgc"),
])
def test_gate_settings_are_checked(ease_store, tmp_path, field, value, message):
    with pytest.raises(ConfigError, match=message):
        retrain(ease_store, SQLiteEventStore(tmp_path / "events.db"), RetrainConfig(**{field: value}))


def test_publish_stores_a_splits_validation_part_as_the_holdout(tiny_split, tmp_path, capsys):
    EASE(lam=1.0).fit(tiny_split.train).save(tmp_path / "model")
    split = save_split(tiny_split, tmp_path / "split")
    assert main(["publish", str(tmp_path / "model"), str(tmp_path / "store"), "--holdout", str(split)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["holdout"]["pairs"] == 2 and out["holdout"]["in_model_training"] == 0
    held = ModelStore(tmp_path / "store").load_holdout()
    assert sorted(zip(held.users.tolist(), held.items.tolist())) == [("u01", 9), ("u11", 8)]
    no_valid = tiny_split.__class__(**{**vars(tiny_split), "valid": tiny_split.valid.subset(np.zeros(2, bool))})
    save_split(no_valid, tmp_path / "split-no-valid")
    code = main(["publish", str(tmp_path / "model"), str(tmp_path / "other"), "--holdout", str(tmp_path / "split-no-valid")])
    assert code == 2 and "has no validation interactions" in capsys.readouterr().err
    assert not (tmp_path / "other").exists(), "nothing is published when the holdout is refused"
