"""`compare`: a one-section study. Each (model, seed) is a cell of the one store and runner; the
cells make a Report.

>>> from lmrec import compare
>>> from lmrec.models import EASE, MostPopular
>>> report = compare({"pop": MostPopular(), "ease": EASE(lam=500)}, "ml1m-random",
...                  ["ndcg@10", "recall@10"], data_dir="../shared/datasets")  # doctest: +SKIP
>>> print(report)
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from lmrec.data.protocols import get_protocol
from lmrec.data.splits import Split
from lmrec.evaluation.evaluator import DEFAULT_METRICS, EvalResult, Evaluator
from lmrec.evaluation.stats import mean_interval, paired_test
from lmrec.models.base import Recommender
from lmrec.models.trained import TrainedRecommender
from lmrec.study.compare_report import ModelRow, Report
from lmrec.study.runner import Cell, run_cells
from lmrec.study.store import CellStore, canonical
from lmrec.training.config import TrainConfig

SECTION = "compare"


def with_seed(model: Recommender, seed: int) -> Recommender:
    """An unfitted clone of ``model`` seeded with ``seed`` (its own or its TrainConfig's)."""
    params = model.get_params()
    if "seed" in params:
        return model.clone(seed=seed)
    if "config" in params:
        cfg = dict(params["config"] or {})
        cfg["seed"] = seed
        return model.clone(config=cfg)
    return model.clone()


def labels(specs: Sequence[str]) -> list[str]:
    """Row labels for model specs ("NAME" or "NAME:key=value,..."): the name alone where it is unique,
    else the whole spec for *every* row of that name, so no row hides the parameter that sets it apart
    (``text-knn:encoder=minilm`` and ``text-knn:encoder=mpnet``, not ``text-knn`` and one spec)."""
    names = [s.split(":", 1)[0] for s in specs]
    count = Counter(names)
    out: list[str] = []
    for spec, name in zip(specs, names):
        label = name if count[name] == 1 else spec
        n = 2
        while label in out:
            label, n = f"{spec} #{n}", n + 1
        out.append(label)
    return out


def _models(models: Mapping[str, Recommender | str | Path] | Sequence[Recommender]) -> dict[str, Recommender | Path]:
    if isinstance(models, Mapping):
        return {k: (Path(v) if isinstance(v, (str, Path)) else v) for k, v in models.items()}
    names: dict[str, Recommender | Path] = {}
    for m in models:
        name = m.name
        n = 2
        while name in names:
            name, n = f"{m.name}-{n}", n + 1
        names[name] = m
    return names


def _say(line: str) -> None:
    """One progress line on stderr (through tqdm, so that it never breaks a bar on a terminal)."""
    tqdm.write(line, file=sys.stderr)


def _best_valid(model: Recommender) -> str:
    """", best valid ndcg@10 0.0951 at epoch 14" for a model trained with a validation, else ""."""
    if not isinstance(model, TrainedRecommender):
        return ""
    metric = TrainConfig.from_any(model.config).metric
    values = [(r[f"valid_{metric}"], r["epoch"]) for r in model.training_log_ if f"valid_{metric}" in r]
    if not values:
        return f", {len(model.training_log_)} epochs"
    best, epoch = max(values, key=lambda v: (v[0], -v[1]))
    return f", {len(model.training_log_)} epochs, best valid {metric} {best:.4f} at epoch {epoch}"


def fit_evaluate(model: Recommender | Path, split: Split, evaluator: Evaluator, label: str = "",
                  progress: bool = False) -> dict[str, Any]:
    """A compare cell: fit (or load) the model, evaluate it; per-user values as arrays. With
    ``progress``, a line when it starts and one when it is done (seconds, the validation figure)."""
    if progress:
        _say(f"{label}: {'loading' if isinstance(model, Path) else 'training'} ...")
    start = time.perf_counter()
    fitted = Recommender.load(model) if isinstance(model, Path) else model.fit(split.train, split.valid)
    fit_seconds = time.perf_counter() - start
    res = evaluator.evaluate(fitted)
    if progress:
        trained = "" if isinstance(model, Path) else _best_valid(fitted)  # a loaded model has no training log
        _say(f"{label}: done in {fit_seconds:.1f} s{trained}; evaluated in {res.seconds:.1f} s")
    return {"summary": res.summary(), "aggregate": res.aggregate, "eval_seconds": res.seconds,
            "n_candidates": res.n_candidates, "fit_seconds": fit_seconds, "uses_history": type(fitted).uses_history,
            "params": canonical(fitted.get_params()),
            "arrays": {"users": np.asarray(res.users), **{f"per_user.{k}": np.asarray(v) for k, v in res.per_user.items()}}}


def _eval_result(result: dict[str, Any]) -> EvalResult:
    arrays = result.get("arrays", {})
    per_user = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("per_user.")}
    return EvalResult(users=arrays.get("users", np.zeros(0, dtype=np.int64)), per_user=per_user,
                      aggregate=result["aggregate"], seconds=result["eval_seconds"], n_candidates=result["n_candidates"])


def compare(
    models: Mapping[str, Recommender | str | Path] | Sequence[Recommender],
    split: Split | str,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    seeds: Sequence[int] | None = None,
    data_dir: str | Path | None = None,
    download: bool = False,
    candidates: str = "all",
    progress: bool = True,
    cache_dir: str | Path | None = None,
) -> Report:
    """Fit each model on the split's train (validation for early stopping) and evaluate on test.

    Parameters
    ----------
    models: name -> model (unfitted: trained here; a path: a saved model loaded, not retrained),
        or a list of models (named by their registry names).
    split: a :class:`Split`, or a protocol name/code rebuilt for each seed (``download``: fetch a
        MovieLens archive missing from the data directory and the cache).
    seeds: several seeds give mean and 95% t-interval over seeds; each model is reseeded, and a
        named protocol is re-split with each seed. One seed: the interval is over users.
    candidates: "all" or "cold" (rank only cold items of a cold-start split).
    cache_dir: a cell store (:mod:`lmrec.study.store`): a (model, seed) cell whose name, class,
        parameters, split fingerprint, metrics and candidates match one stored there by the same code
        version is not trained again, and each new cell is added, so an interrupted or extended
        comparison re-runs only what is new. Saved models (paths) are never cached.

    The paired test compares each model's per-user values of the first metric (averaged over
    seeds) with the first model's.
    """
    seeds = list(seeds) if seeds else [split.seed if isinstance(split, Split) and split.seed is not None else 2026]
    named = _models(models)
    planned: list[Cell] = []
    card: dict[str, Any] = {}
    for seed in seeds:
        sp_ = get_protocol(split, data_dir, seed, download=download) if isinstance(split, str) else split
        card = sp_.card()
        evaluator = Evaluator(sp_, metrics, candidates=candidates)
        for name, model in named.items():
            saved = isinstance(model, Path)
            fresh: Recommender | Path = model if saved else with_seed(model, seed) if len(seeds) > 1 else model.clone()
            described = {"saved": str(fresh)} if isinstance(fresh, Path) else \
                {"class": type(fresh).__name__, "params": fresh.get_params()}
            label = f"compare [{len(planned) + 1}/{len(named) * len(seeds)}] {name}" + \
                (f" (seed {seed})" if len(seeds) > 1 else "")
            planned.append(Cell(SECTION, {"name": name, **described, "seed": seed, "split": card,
                                          "metrics": list(metrics), "candidates": candidates},
                                lambda ctx, key, m=fresh, s=sp_, e=evaluator, t=label:
                                fit_evaluate(m, s, e, t, progress),
                                cache=not saved))
    results = run_cells(planned, CellStore(cache_dir), progress=progress, desc="compare",
                        cell_lines=False)  # fit_evaluate prints its own line per model
    by_name: dict[str, list[dict[str, Any]]] = {n: [] for n in named}
    for cell, result in results.cells:
        by_name[cell.params["name"]].append(result)
    return _report(by_name, list(metrics), seeds, card, candidates)


def _report(by_name: dict[str, list[dict[str, Any]]], metrics: list[str], seeds: list[int], card: dict[str, Any],
            candidates: str) -> Report:
    interval = "seeds" if len(seeds) > 1 else "users"
    first_metric = metrics[0]
    rows: list[ModelRow] = []
    base_users: dict[Any, float] | None = None
    for name, cells in by_name.items():
        res = [_eval_result(c) for c in cells]
        summaries = [r.summary() for r in res]
        means, halves = {}, {}
        for m in metrics:
            if interval == "seeds" or m not in res[0].per_user:
                means[m], halves[m] = mean_interval(np.array([s[m] for s in summaries]))
            else:
                means[m], halves[m] = mean_interval(res[0].per_user[m])
        per_user = _per_user_mean(res, first_metric)
        row = ModelRow(name=name, params=cells[0]["params"], means=means, intervals=halves,
                       fit_seconds=float(np.mean([c["fit_seconds"] for c in cells])),
                       eval_seconds=float(np.mean([r.seconds for r in res])),
                       uses_history=bool(cells[0]["uses_history"]), per_seed=summaries)
        if base_users is None:
            base_users = per_user
        elif per_user:
            common = sorted(set(base_users) & set(per_user))
            row.test = paired_test(np.array([base_users[u] for u in common]), np.array([per_user[u] for u in common]))
        rows.append(row)
    return Report(protocol=card.get("protocol", ""), metrics=metrics, seeds=seeds, rows=rows,
                  interval=interval, card=card, candidates=candidates)


def _per_user_mean(results: list[EvalResult], metric: str) -> dict[Any, float]:
    if metric not in results[0].per_user:
        return {}
    sums: dict[int, list[float]] = {}
    for r in results:
        for u, v in zip(r.users.tolist(), r.per_user[metric].tolist()):
            sums.setdefault(u, []).append(v)
    return {u: float(np.nanmean(v)) for u, v in sums.items()}
