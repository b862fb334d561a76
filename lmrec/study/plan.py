"""Plan a study spec's cells and run them through the one runner (:func:`lmrec.study.runner.run_cells`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lmrec.study import cells
from lmrec.study.grid import Recipe, grid_cells
from lmrec.study.runner import Cell, RunResults, run_cells
from lmrec.study.spec import StudySpec
from lmrec.study.store import CellStore


@dataclass
class StudyResults(RunResults):
    spec: StudySpec = field(default_factory=lambda: StudySpec(path=Path("study.toml")))


def plan(spec: StudySpec, recipes: dict[str, Recipe] | None = None) -> list[Cell]:
    """Every cell of the spec, in a stable order: the quick sections first, the grids last
    (``recipes``: grid recipes beyond lmrec's own "fit", supplied by the script that runs the spec)."""
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
    out += _losses_cells(spec)  # the longest trainings
    return out + grid_cells(spec, recipes)


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
              report_only: bool = False, keep_stale: bool | None = None,
              recipes: dict[str, Recipe] | None = None) -> StudyResults:
    """Compute the spec's cells not already stored under ``out``/cells, or stored by other code
    (``keep_stale``: only the missing ones, default the spec's ``keep_stale``; ``report_only``: none,
    the stored ones are reported). ``recipes``: see :func:`plan`."""
    out = Path(out or spec.out)
    results = StudyResults(spec=spec)
    keep = spec.keep_stale if keep_stale is None else keep_stale
    run_cells(plan(spec, recipes), CellStore(out / "cells"), context=cells.Context(spec, out),
              report_only=report_only, keep_stale=keep, progress=progress, desc="study cells", results=results)
    return results
