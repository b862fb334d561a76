"""The cell store: records round-trip with their arrays and code version; keys separate what differs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lmrec.errors import ConfigError
from lmrec.study.store import CellStore, StoredCell, canonical, cell_key


def test_a_cell_round_trips_with_its_arrays_and_a_partial_one_is_a_miss(tmp_path):
    store = CellStore(tmp_path / "cells")
    key = cell_key("compare", {"name": "mf", "seed": 1})
    cell = StoredCell(key, "compare", {"name": "mf", "seed": 1}, "abc123", {"summary": {"ndcg@10": 0.25}},
                      {"users": np.array([3, 7]), "per_user.ndcg@10": np.array([0.5, 0.0])})
    assert store.get(key) is None
    store.put(cell)
    back = store.get(key)
    assert back is not None and back.code == "abc123" and back.result == cell.result and back.params == cell.params
    np.testing.assert_array_equal(back.arrays["per_user.ndcg@10"], [0.5, 0.0])
    assert [c.key for c in store] == [key]
    (tmp_path / "cells" / f"{key}.json").unlink()  # the JSON is written last: without it, no cell
    assert store.get(key) is None and list(store) == []


def test_keys_hold_the_section_and_every_parameter_not_the_code():
    base = {"name": "mf", "params": {"dim": 8}, "seed": 1, "split": {"fingerprint": "abc"}, "metrics": ["ndcg@10"]}
    key = cell_key("compare", base)
    assert key == cell_key("compare", json.loads(json.dumps(base))) and key.startswith("compare-")
    changed = [{**base, "params": {"dim": 16}}, {**base, "seed": 2}, {**base, "split": {"fingerprint": "abd"}},
               {**base, "metrics": ["recall@10"]}]
    assert len({key, cell_key("finetune", base), *(cell_key("compare", c) for c in changed)}) == 6
    assert canonical({"t": (1, 2), "p": tmp_path_like()}) == {"t": [1, 2], "p": "/x/y"}


def tmp_path_like():
    from pathlib import Path

    return Path("/x/y")


def test_a_file_of_another_format_is_named_in_the_error(tmp_path):
    store = CellStore(tmp_path)
    (tmp_path / "old.json").write_text(json.dumps({"protocol": "P2"}))
    with pytest.raises(ConfigError, match=r"old.json: not a cell of the study store \(format 2"):
        list(store)


def test_an_in_memory_store_keeps_cells_for_the_run_only():
    store = CellStore(None)
    store.put(StoredCell("k", "s", {}, "c", {"x": 1}))
    assert store.get("k").result == {"x": 1} and CellStore(None).get("k") is None
