"""Run a study: plan its cells, compute those not in the store, write the report.

A cell is one (section, parameters) pair; its result is stored under a key of its parameters and
the code version (:mod:`lmrec.study.store`), so an interrupted or extended study re-runs only
what is new.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lmrec.errors import ConfigError
from lmrec.study import cells
from lmrec.study.spec import StudySpec
from lmrec.study.store import CellStore, cell_key, code_version


@dataclass
class Cell:
    section: str
    params: dict[str, Any]
    run: Callable[[cells.Context, str], dict[str, Any]]
    key: str = ""


@dataclass
class StudyResults:
    spec: StudySpec
    cells: list[tuple[Cell, dict[str, Any]]] = field(default_factory=list)
    computed: int = 0
    reused: int = 0
    seconds: float = 0.0
    code: str = ""

    def section(self, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(c.params, r) for c, r in self.cells if c.section == name]


def plan(spec: StudySpec) -> list[Cell]:
    """Every cell of the spec, in a stable order: the quick sections first."""
    out: list[Cell] = []
    if spec.fairness:
        fsec = spec.fairness
        for protocol in fsec.protocols:
            for seed in spec.section_seeds(fsec):
                for name in fsec.models:
                    out.append(Cell("fairness", {"protocol": protocol, "name": name, "model": spec.model(name),
                                                 "seed": seed, "k": fsec.k, "pool": fsec.pool, "lams": fsec.lams,
                                                 "groups": fsec.groups},
                                    lambda ctx, run, p=protocol, n=name, s=seed: cells.fairness_cell(ctx, p, n, s, run)))
    if spec.robustness:
        out += _robustness_cells(spec)
    if spec.explanations:
        esec = spec.explanations
        for seed in spec.section_seeds(esec):
            for name in esec.models:
                out.append(Cell("explanations", {"protocol": esec.protocol, "name": name, "model": spec.model(name),
                                                 "seed": seed, "users": esec.users, "sizes": esec.sizes,
                                                 "explainers": esec.explainers},
                                lambda ctx, run, n=name, s=seed: cells.explanation_cell(ctx, n, s, run)))
    out += _losses_cells(spec)  # last: the longest trainings
    return out


def _losses_cells(spec: StudySpec) -> list[Cell]:
    out: list[Cell] = []
    if spec.losses:
        sec = spec.losses
        for protocol in sec.protocols:
            for seed in spec.section_seeds(sec, default_all=True):
                for loss in sec.losses:
                    out.append(Cell("losses", {"protocol": protocol, "model": spec.model(sec.model), "loss": loss,
                                               "seed": seed, "metrics": spec.metrics,
                                               "train": sec.config.get(protocol, {})},
                                    lambda ctx, run, p=protocol, lo=loss, s=seed: cells.loss_cell(ctx, p, lo, s, run)))
    return out


def _robustness_cells(spec: StudySpec) -> list[Cell]:
    sec = spec.robustness
    assert sec is not None
    out: list[Cell] = []
    common = {"protocol": sec.protocol, "targets": sec.targets, "filler": sec.filler, "k": sec.k}
    for seed in spec.section_seeds(sec):
        for share in sec.outlier_ratings:
            out.append(Cell("cleaning", {**common, "share": share, "scale": sec.rating_scale, "seed": seed},
                            lambda ctx, run, sh=share, s=seed: cells.cleaning_cell(ctx, sh, s)))
        variants: list[tuple[str, float, bool]] = [("clean", 0.0, False), ("clean", 0.0, True)]
        variants += [("false-positives", x, False) for x in sec.false_positives]
        variants += [("dropped", x, False) for x in sec.dropped]
        variants += [(a, x, False) for a in sec.attacks for x in sec.attack_sizes]
        variants += [(a, max(sec.attack_sizes), True) for a in sec.attacks] if sec.attack_sizes else []
        for name in sec.models:
            for kind, level, defence in variants:
                params = {**common, "name": name, "model": spec.model(name), "kind": kind, "level": level,
                          "defence": defence, "seed": seed, **({"threshold": sec.threshold} if defence else {})}
                out.append(Cell("robustness", params,
                                lambda ctx, run, n=name, k=kind, lv=level, d=defence, s=seed:
                                cells.robustness_cell(ctx, n, k, lv, d, s, run)))
    return out


def run_study(spec: StudySpec, out: str | Path | None = None, *, progress: bool = True,
              report_only: bool = False, code: str | None = None) -> StudyResults:
    """Compute the spec's cells not already stored under ``out``/cells (``report_only``: use
    the stored ones only, skipping the rest). ``code``: with ``report_only``, read the cells that
    another code version computed (the report says which) instead of this one's."""
    out = Path(out or spec.out)
    store = CellStore(out / "cells")
    if code is not None and not report_only:
        raise ConfigError("cells of another code version can only be reported (report_only), not extended.")
    code = code or code_version()
    results = StudyResults(spec, code=code)
    ctx = cells.Context(spec, out)
    start = time.perf_counter()
    planned = plan(spec)
    for cell in tqdm(planned, desc="study cells", disable=not progress):
        cell.key = cell_key(cell.section, cell.params, code)
        found = store.get(cell.key)
        if found is None and report_only:
            continue
        if found is None:
            found = cell.run(ctx, cell.key)
            store.put(cell.key, found)
            results.computed += 1
        else:
            results.reused += 1
        results.cells.append((cell, found))
    results.seconds = time.perf_counter() - start
    return results
