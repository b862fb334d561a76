"""The one store of finished cells, keyed by the cell's section and parameters.

A cell's parameters hold everything its numbers depend on that a spec declares: the model's name
and parameters, the protocol (or the split's card, with its fingerprint), the seed, the metrics.
The code version (a digest of the source files that compute results) is *not* part of the key:
each record carries the version that computed it, and the runner decides what a record of another
version is worth (:func:`lmrec.study.runner.run_cells`):

- ``run`` (the default) recomputes a cell that is missing or *stale* (computed by other code);
- ``run`` with ``keep_stale`` recomputes only missing cells (a benchmark whose cells cost hours);
- ``report_only`` computes nothing and reports every stored cell, naming its code version.

On disk a cell is ``<key>.json`` (format, section, parameters, code version, the JSON result) and,
when the result has arrays (per-user values), ``<key>.safetensors``: the arrays are written first
and the JSON last, each through a temporary file renamed into place, so a cell without its JSON
is not there. ``CellStore(None)`` keeps cells in memory only (``compare`` without a cache folder).
"""
from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.errors import ConfigError
from lmrec.storage.artifacts import atomic_write_text, load_arrays, save_arrays

FORMAT = 2
PACKAGE = Path(__file__).resolve().parents[1]
# code that cannot change a cell's numbers: the reports, the plots, the service and the command line
NOT_RESULTS = ("serving", "study/report.py", "study/plots.py", "study/render.py", "study/pages.py",
               "study/compare_report.py", "study/provenance.py", "study/grid_report.py", "cli")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A digest of the source files that compute results, read once per process: the code this process
    runs (files edited while it runs are not the code that computed its cells)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if any(rel.startswith(prefix) for prefix in NOT_RESULTS):
            continue
        digest.update(rel.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def canonical(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as JSON reads it back (tuples as lists, options and paths as text): what is hashed is
    what is stored."""
    return json.loads(json.dumps(params, sort_keys=True, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def cell_key(section: str, params: dict[str, Any]) -> str:
    """A file-name-safe key: the section, then a digest of the canonical parameters."""
    blob = json.dumps(canonical(params), sort_keys=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in section)
    return f"{safe}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


@dataclass
class StoredCell:
    """One finished cell: what it is (section, parameters), which code computed it, what it found."""

    key: str
    section: str
    params: dict[str, Any]
    code: str
    result: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class CellStore:
    """``get(key)``, ``put(cell)`` and iteration over a folder of cells (``None``: in memory)."""

    def __init__(self, directory: str | Path | None) -> None:
        self.dir = Path(directory) if directory is not None else None
        self._memory: dict[str, StoredCell] = {}
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> StoredCell | None:
        if self.dir is None:
            return self._memory.get(key)
        return self._read(self.dir / f"{key}.json")

    def put(self, cell: StoredCell) -> None:
        if self.dir is None:
            self._memory[cell.key] = cell
            return
        if cell.arrays:
            tmp = self.dir / f".{cell.key}.safetensors.tmp"
            save_arrays(tmp, {k: np.asarray(v) for k, v in cell.arrays.items()})
            tmp.replace(self.dir / f"{cell.key}.safetensors")
        record = {"format": FORMAT, "key": cell.key, "section": cell.section, "params": canonical(cell.params),
                  "code": cell.code, "arrays": sorted(cell.arrays), "result": cell.result}
        atomic_write_text(self.dir / f"{cell.key}.json", json.dumps(record, indent=1, default=_number) + "\n")

    def __iter__(self) -> Iterator[StoredCell]:
        if self.dir is None:
            yield from (self._memory[k] for k in sorted(self._memory))
            return
        for path in sorted(self.dir.glob("*.json")):
            found = self._read(path)
            if found is not None:
                yield found

    def _read(self, path: Path) -> StoredCell | None:
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a damaged record is computed again
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise ConfigError(f"{path}: not a cell of the study store (format {FORMAT} expected, got "
                              f"{record.get('format') if isinstance(record, dict) else type(record).__name__}).")
        arrays = load_arrays(path.with_suffix(".safetensors")) if record.get("arrays") else {}
        return StoredCell(record["key"], record["section"], record["params"], record["code"], record["result"], arrays)


def _number(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return float(value)
