"""Finished study cells on disk, keyed by the cell's parameters and the code that computes results.

One JSON file per cell (written to a temporary name and renamed). The key holds a digest of the
source files that compute results (everything in the package but the report and the service),
so a study resumes without retraining finished cells and recomputes them after such code changes.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lmrec.storage.artifacts import atomic_write_text, read_json

PACKAGE = Path(__file__).resolve().parents[1]
NOT_RESULTS = ("serving", "study/report.py", "study/plots.py", "cli")  # code that cannot change a cell's numbers


def code_version() -> str:
    """A digest of the source files that compute results."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if any(rel.startswith(prefix) for prefix in NOT_RESULTS):
            continue
        digest.update(rel.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def cell_key(section: str, params: dict[str, Any], code: str) -> str:
    blob = json.dumps({"section": section, "params": params, "code": code}, sort_keys=True, default=str)
    return f"{section}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


class CellStore:
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.dir / f"{key}.json"
        if not path.exists():
            return None
        try:
            return read_json(path)
        except Exception:  # noqa: BLE001 - an unreadable cell is computed again
            return None

    def put(self, key: str, result: dict[str, Any]) -> None:
        atomic_write_text(self.dir / f"{key}.json", json.dumps(result, default=float) + "\n")
