"""``[grid.NAME]`` sections: models x protocols x seeds, each cell computed by a recipe.

The recipe "fit" is lmrec's own: the spec's model fitted on the protocol's train (validation for early
stopping) and measured on test by the one evaluator, per-user values kept (:func:`lmrec.study.compare`
computes its cells the same way). A script whose cells need more than a fit (a two-stage fine-tuning,
say) supplies its own :class:`Recipe` to :func:`lmrec.study.plan.run_study`; ``lmrec study`` on such a
spec stops with an error naming the recipe.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lmrec.errors import ConfigError
from lmrec.evaluation.evaluator import Evaluator
from lmrec.study.compare import fit_evaluate
from lmrec.study.runner import Cell
from lmrec.study.spec import RECIPES, GridSection, StudySpec


@dataclass(frozen=True)
class Recipe:
    """How a grid's cell is keyed and computed.

    ``params(spec, grid, protocol, name, seed)``: the cell's parameters (its key: everything its numbers
    depend on); ``compute(context, grid, protocol, name, seed, key)``: its JSON result (arrays under
    ``"arrays"``)."""

    params: Callable[[StudySpec, GridSection, str, str, int], dict[str, Any]]
    compute: Callable[[Any, GridSection, str, str, int, str], dict[str, Any]]


def grid_metrics(spec: StudySpec, grid: GridSection) -> list[str]:
    return list(grid.metrics or spec.metrics)


def grid_seeds(spec: StudySpec, grid: GridSection) -> list[int]:
    return list(grid.seeds or spec.seeds)


def section_name(name: str, grid: GridSection) -> str:
    """The store section of a grid's cells: its ``section``, else ``grid.NAME``."""
    return grid.section or f"grid.{name}"


def _fit_params(spec: StudySpec, grid: GridSection, protocol: str, name: str, seed: int) -> dict[str, Any]:
    return {"protocol": protocol, "name": name, "model": spec.model(name, protocol), "seed": seed,
            "metrics": grid_metrics(spec, grid), "candidates": grid.candidates}


def _fit_compute(ctx: Any, grid: GridSection, protocol: str, name: str, seed: int, key: str) -> dict[str, Any]:
    split = ctx.split(protocol, seed)
    model = ctx.model(name, seed, key, protocol=protocol)
    evaluator = Evaluator(split, grid_metrics(ctx.spec, grid), candidates=grid.candidates)
    return {**fit_evaluate(model, split, evaluator), "run": key}


FIT = Recipe(_fit_params, _fit_compute)


def grid_cells(spec: StudySpec, recipes: dict[str, Recipe] | None = None) -> list[Cell]:
    """Every cell of the spec's grids, grid by grid, then protocol, seed and model."""
    known = {"fit": FIT, **(recipes or {})}
    out: list[Cell] = []
    for gname, grid in spec.grid.items():
        recipe = known.get(grid.recipe)
        if recipe is None:
            raise ConfigError(f"{spec.path}: [grid.{gname}] recipe {grid.recipe!r} is not one this command "
                              f"computes ({', '.join(sorted({*RECIPES, *known}))}); run the spec with the script "
                              f"that supplies it (see the spec's comments).")
        for protocol in grid.protocols:
            for seed in grid_seeds(spec, grid):
                for name in grid.models:
                    out.append(Cell(section_name(gname, grid), recipe.params(spec, grid, protocol, name, seed),
                                    lambda ctx, key, g=grid, p=protocol, n=name, s=seed, r=recipe:
                                    r.compute(ctx, g, p, n, s, key), isolate=grid.isolate))
    return out
