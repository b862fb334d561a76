"""ServedModel's event-loop path: the same answers as the worker-thread path, and none (so the route
falls back to a worker thread) when the search is big or the model is busy."""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from lmrec.serving import state as state_module
from lmrec.serving.state import ServedModel
from tests.serving.conftest import new_store


@pytest.fixture(scope="module")
def served(tiny_model, tmp_path_factory) -> ServedModel:
    return ServedModel.load(new_store(tiny_model, tmp_path_factory.mktemp("state") / "models"), index="exact")


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_the_event_loop_path_gives_the_same_ranking(served, exclude_seen):
    assert served.model.n_users_ > 1
    for user in range(served.model.n_users_):
        now = served.recommend_user_now(user, 5, exclude_seen)
        assert now is not None
        items, scores = served.recommend_user(user, 5, exclude_seen)
        np.testing.assert_array_equal(now[0], items)
        np.testing.assert_array_equal(now[1], scores)
        if exclude_seen:
            assert not set(items.tolist()) & set(served.history(user))


def test_it_never_waits_for_a_busy_model(served, monkeypatch):
    held, release = threading.Event(), threading.Event()

    def slow_update(*args: object, **kwargs: object) -> None:  # a long item update: the model is held until released
        held.set()
        release.wait(10)
        raise RuntimeError("update abandoned")

    monkeypatch.setattr(served.model, "add_items", slow_update)
    failed: list[BaseException] = []

    def update() -> None:
        try:
            served.add_items(pd.DataFrame({"item": ["new-item"], "title": ["a new item"]}))
        except RuntimeError as e:
            failed.append(e)

    worker = threading.Thread(target=update)
    worker.start()
    try:
        assert held.wait(10)
        assert served.recommend_user_now(0, 5) is None
    finally:
        release.set()
        worker.join()
    assert len(failed) == 1
    assert served.recommend_user_now(0, 5) is not None  # free again


def test_a_big_catalogue_goes_to_a_worker_thread(served, monkeypatch):
    monkeypatch.setattr(state_module, "INLINE_FLOATS", served.index.vectors.size)
    assert served.recommend_user_now(0, 5) is None
    monkeypatch.setattr(state_module, "INLINE_FLOATS", served.index.vectors.size + 1)
    assert served.recommend_user_now(0, 5) is not None


def test_an_approximate_index_goes_to_a_worker_thread(tiny_model, tmp_path):
    hnsw = ServedModel.load(new_store(tiny_model, tmp_path / "models"), index="hnsw")
    assert hnsw.recommend_user_now(0, 5) is None
    assert len(hnsw.recommend_user(0, 5)[0]) > 0
