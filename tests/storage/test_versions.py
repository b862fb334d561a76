"""Version stores: numbering, CURRENT pointer, single model directories."""
from __future__ import annotations

import pytest

from lmrec.errors import ArtifactError
from lmrec.models import MostPopular
from lmrec.storage.versions import ModelStore


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
