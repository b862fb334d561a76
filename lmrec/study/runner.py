"""The one runner: compute the planned cells a store lacks (or holds from other code), reuse the rest.

A cell is one (section, parameters) pair; its result is stored under a key of its parameters with
the code version that computed it (:mod:`lmrec.study.store`), so an interrupted or extended run
re-runs only what is new, and a code change re-runs what it may have changed. ``lmrec study``
(:mod:`lmrec.study.plan`), :func:`lmrec.compare` and the benchmark scripts all go through
:func:`run_cells`.
"""
from __future__ import annotations

import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from lmrec.errors import ConfigError
from lmrec.study.provenance import peak_rss_mb
from lmrec.study.store import CellStore, StoredCell, cell_key, code_version


@dataclass
class Cell:
    """One planned cell: ``run(context, key)`` computes its JSON result (a key ``"arrays"``, a dict of
    numpy arrays, is stored beside it as safetensors). ``cache=False``: always computed, never stored
    (a saved model read from a folder, whose content the parameters do not pin). ``isolate``: computed
    in its own forked process, as every cell of ``run_cells(..., isolate=True)``."""

    section: str
    params: dict[str, Any]
    run: Callable[[Any, str], dict[str, Any]]
    key: str = ""
    cache: bool = True
    isolate: bool = False


@dataclass
class RunResults:
    """What one run found: each planned cell with its result (arrays under ``"arrays"``)."""

    cells: list[tuple[Cell, dict[str, Any]]] = field(default_factory=list)
    codes: dict[str, str] = field(default_factory=dict)  # cell key -> the code version that computed it
    computed: int = 0
    reused: int = 0
    stale: int = 0  # reused although another code version computed them (keep_stale, report_only)
    missing: int = 0  # planned, not stored, not computed (report_only)
    seconds: float = 0.0
    code: str = ""

    def section(self, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(c.params, r) for c, r in self.cells if c.section == name]

    def code_versions(self) -> Counter[str]:
        """How many reported cells each code version computed."""
        return Counter(self.codes.values())


def _compute(cell: Cell, context: Any) -> dict[str, Any]:
    start = time.perf_counter()
    result = dict(cell.run(context, cell.key))
    result.setdefault("cell_seconds", round(time.perf_counter() - start, 3))
    result.setdefault("peak_rss_mb", peak_rss_mb())
    return result


def _stored(cell: Cell, result: dict[str, Any], code: str) -> StoredCell:
    arrays = result.pop("arrays", None) or {}
    return StoredCell(cell.key, cell.section, cell.params, code, result, arrays)


def _isolated(cell: Cell, context: Any, store: CellStore, code: str) -> None:
    """Compute ``cell`` in a forked child that writes it to ``store``: its peak memory is its own, and
    the memory it held goes back when it ends."""
    if store.dir is None:
        raise ConfigError("isolate needs a store folder: the child process hands its cell back through it.")

    def child() -> None:
        store.put(_stored(cell, _compute(cell, context), code))

    proc = multiprocessing.get_context("fork").Process(target=child, name=f"cell {cell.key}")
    proc.start()
    proc.join()
    if proc.exitcode != 0 or store.get(cell.key) is None:
        raise RuntimeError(f"cell {cell.key} ({cell.section} {cell.params}) failed in its own process "
                           f"(exit code {proc.exitcode}).")


def run_cells(planned: list[Cell], store: CellStore, *, context: Any = None, code: str | None = None,
              report_only: bool = False, keep_stale: bool = False, isolate: bool = False, progress: bool = True,
              cell_lines: bool = True, desc: str = "cells", results: RunResults | None = None) -> RunResults:
    """Compute the planned cells the store lacks, or holds from another code version, and return every one.

    ``keep_stale``: reuse a stored cell whatever code computed it (compute only missing cells).
    ``report_only``: compute nothing; report the stored cells (any code version) and count the rest missing.
    ``progress``: a bar over the cells on a terminal; elsewhere (a log, a pipe) a line per computed cell,
    unless ``cell_lines=False`` (a caller that prints its own). ``isolate``: compute each cell in its own
    forked process (its ``peak_rss_mb`` is then the cell's own; in-process it is the process's peak so far).
    """
    results = results if results is not None else RunResults()
    code = results.code = code or code_version()
    start = time.perf_counter()
    # the bar only on a terminal (tqdm's disable=None); in a log or a pipe, a line per computed cell instead
    bar = tqdm(planned, desc=desc, disable=None if progress else True)
    lines = progress and cell_lines and bar.disable
    for i, cell in enumerate(bar, 1):
        done_before, began = results.computed, time.perf_counter()
        cell.key = cell_key(cell.section, cell.params)
        found = store.get(cell.key) if cell.cache else None
        if found is not None and (found.code == code or keep_stale or report_only):
            results.reused += 1
            results.stale += found.code != code
        elif report_only:
            results.missing += 1
            continue
        elif (isolate or cell.isolate) and cell.cache:
            _isolated(cell, context, store, code)
            found = store.get(cell.key)
            results.computed += 1
        else:
            found = _stored(cell, _compute(cell, context), code)
            if cell.cache:
                store.put(found)
            results.computed += 1
        assert found is not None
        if lines and done_before < results.computed:  # this cell was computed now
            tqdm.write(f"{desc} [{i}/{len(planned)}] {cell.key}: computed in {time.perf_counter() - began:.1f} s",
                       file=sys.stderr)
        results.cells.append((cell, {**found.result, **({"arrays": found.arrays} if found.arrays else {})}))
        results.codes[cell.key] = found.code
    results.seconds = time.perf_counter() - start
    return results
