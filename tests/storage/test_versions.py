"""Version stores: numbering, CURRENT pointer, single model directories, the fixed holdout."""
from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from lmrec.errors import ArtifactError, ConfigError
from lmrec.models import MostPopular
from lmrec.storage.versions import Holdout, ModelStore


def test_publish_and_current(tiny_split, tmp_path):
    model = MostPopular().fit(tiny_split.train)
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ArtifactError, match="holds no model"):
        store.current()
    assert store.publish(model) == "v0001" and store.publish(model, make_current=False) == "v0002"
    assert store.versions() == ["v0001", "v0002"] and store.current() == "v0001"
    store.set_current("v0002")
    assert store.current_path() == tmp_path / "models" / "v0002"
    assert not list((tmp_path / "models").glob(".*tmp*")), "no temporary files are left behind"
    (tmp_path / "models" / "CURRENT").write_text("v0042\n")
    with pytest.raises(ArtifactError, match="not a version folder"):
        store.current()


def test_single_model_directory(tiny_split, tmp_path):
    MostPopular().fit(tiny_split.train).save(tmp_path / "one")
    store = ModelStore(tmp_path / "one")
    assert store.single and store.current_path() == tmp_path / "one"
    with pytest.raises(ArtifactError, match="single model directory"):
        store.publish(MostPopular().fit(tiny_split.train))


def test_versions_are_names_inside_the_store(tiny_split, tmp_path):
    store = ModelStore(tmp_path / "models")
    store.publish(MostPopular().fit(tiny_split.train))
    assert store.version_path("v0001") == tmp_path / "models" / "v0001"
    for name in ("../models/v0001", str(tmp_path / "models" / "v0001"), "v0001/..", "v0001\n", ".", "CURRENT"):
        with pytest.raises(ArtifactError, match="is not a version name"):
            store.version_path(name)
    with pytest.raises(ArtifactError, match="does not exist"):
        store.version_path("v0002")


def test_links_may_not_lead_out_of_the_store(tiny_split, tmp_path):
    MostPopular().fit(tiny_split.train).save(tmp_path / "outside")
    store = ModelStore(tmp_path / "models")
    store.publish(MostPopular().fit(tiny_split.train))
    (store.root / "v0002").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(ArtifactError, match="outside the store"):
        store.version_path("v0002")
    (store.root / "v0003").mkdir()
    (store.root / "v0003" / "deeper").mkdir()
    (store.root / "v0003" / "deeper" / "weights").symlink_to(tmp_path / "outside" / "manifest.json")
    with pytest.raises(ArtifactError, match="outside the store"):
        store.version_path("v0003")
    (store.root / "v0004").symlink_to(store.root / "v0001", target_is_directory=True)  # inside: allowed
    (store.root / "v0001" / "loop").symlink_to(store.root / "v0001", target_is_directory=True)  # a cycle ends
    assert store.version_path("v0004") == store.root / "v0004"
    single = ModelStore(tmp_path / "outside")
    assert single.version_path("outside") == tmp_path / "outside"
    with pytest.raises(ArtifactError, match="single model directory"):
        single.version_path("v0001")


def test_the_holdout_is_stored_atomically_and_read_back_checked(tiny_split, tmp_path):
    store = ModelStore(tmp_path / "models")
    store.publish(MostPopular().fit(tiny_split.train))
    assert not store.has_holdout() and store.load_holdout() is None
    pairs = Holdout(np.array(["u01", "u02", "u01"], dtype=object), np.array([3, 7, 9]), "a test", {"note": 1})
    store.save_holdout(pairs)
    back = store.load_holdout()
    assert back.users.tolist() == ["u01", "u02", "u01"] and back.items.tolist() == [3, 7, 9]
    assert back.source == "a test" and back.info == {"note": 1} and store.describe()["holdout"] == "a test"
    assert store.versions() == ["v0001"], "the holdout folder is not a version"
    assert not list((tmp_path / "models").glob(".*tmp*"))
    with pytest.raises(ArtifactError, match="already exists"):
        store.save_holdout(pairs, overwrite=False)
    arrays = {"users": np.array([0, 5, 0]), "items": np.array([0, 1, 2])}  # user 5 of 2 raw ids
    save_file(arrays, str(tmp_path / "models" / "holdout" / "holdout.safetensors"))
    with pytest.raises(ArtifactError, match=r"'users' must hold 3 indices in \[0, 2\); the holdout is corrupt"):
        store.load_holdout()


def test_holdout_errors_name_what_was_expected(tiny_split, tmp_path):
    MostPopular().fit(tiny_split.train).save(tmp_path / "one")
    one = Holdout(np.array(["u01"]), np.array([1]), "x")
    with pytest.raises(ArtifactError, match="single model directory"):
        ModelStore(tmp_path / "one").save_holdout(one)
    with pytest.raises(ConfigError, match="no \\(user, item\\) pair"):
        ModelStore(tmp_path / "models").save_holdout(Holdout(np.zeros(0), np.zeros(0), "x"))
    with pytest.raises(ConfigError, match="'users' has 2 entries but 'items' has 1"):
        Holdout(np.array(["a", "b"]), np.array([1]), "x")
