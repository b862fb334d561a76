"""Artifact helpers: single files are replaced whole or not at all."""
from __future__ import annotations

import pytest

from lmrec.storage.artifacts import atomic_write_text


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results" / "table.md"
    atomic_write_text(path, "old\n")
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert [p.name for p in path.parent.iterdir()] == ["table.md"]


def test_a_failed_write_keeps_the_old_content(tmp_path):
    path = tmp_path / "table.md"
    path.write_text("old\n")
    with pytest.raises(TypeError):
        atomic_write_text(path, None)  # type: ignore[arg-type]  # fails inside the write
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]
