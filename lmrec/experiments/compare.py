"""`compare`: train (or load) each model, evaluate on one split, return a Report.

>>> from lmrec import compare
>>> from lmrec.models import EASE, MostPopular
>>> report = compare({"pop": MostPopular(), "ease": EASE(lam=500)}, "ml1m-random",
...                  ["ndcg@10", "recall@10"], data_dir="../shared/datasets")  # doctest: +SKIP
>>> print(report)
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from lmrec.data.protocols import get_protocol
from lmrec.data.splits import Split
from lmrec.evaluation.evaluator import DEFAULT_METRICS, EvalResult, Evaluator
from lmrec.experiments.report import ModelRow, Report
from lmrec.experiments.result_cache import ResultCache, result_key
from lmrec.evaluation.stats import mean_interval, paired_test
from lmrec.models.base import Recommender


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
    cache_dir: a folder of finished evaluations (:mod:`lmrec.experiments.result_cache`): a model
        whose name, parameters (seed included), split, metrics and candidates match an entry
        there is not trained again, and each new evaluation is added, so an interrupted or
        extended comparison re-runs only what is new. Saved models (paths) are not cached.

    The paired test compares each model's per-user values of the first metric (averaged over
    seeds) with the first model's.
    """
    seeds = list(seeds) if seeds else [split.seed if isinstance(split, Split) and split.seed is not None else 2026]
    named = _models(models)
    results: dict[str, list[EvalResult]] = {n: [] for n in named}
    fit_s: dict[str, list[float]] = {n: [] for n in named}
    fitted: dict[str, Recommender] = {}
    card: dict[str, Any] = {}
    cache = ResultCache(cache_dir) if cache_dir is not None else None
    for seed in seeds:
        sp_ = get_protocol(split, data_dir, seed, download=download) if isinstance(split, str) else split
        card = sp_.card()
        evaluator = Evaluator(sp_, metrics, candidates=candidates)
        for name, model in tqdm(named.items(), desc=f"seed {seed}", disable=not progress):
            saved = isinstance(model, Path)
            fresh = model if saved else with_seed(model, seed) if len(seeds) > 1 else model.clone()
            key = None if saved or cache is None else \
                result_key(name, type(fresh).__name__, fresh.get_params(), seed, card, list(metrics), candidates)
            hit = cache.get(key) if cache is not None and key else None
            if hit is None:
                start = time.perf_counter()
                fitted[name] = Recommender.load(fresh) if saved else fresh.fit(sp_.train, sp_.valid)
                seconds = time.perf_counter() - start
                hit = evaluator.evaluate(fitted[name]), seconds
                if cache is not None and key:
                    cache.put(key, *hit)
            else:
                fitted[name] = fresh  # unfitted: the report reads its parameters only
            results[name].append(hit[0])
            fit_s[name].append(hit[1])
    return _report(named, fitted, results, fit_s, list(metrics), seeds, card, candidates)


def _report(named: dict[str, Any], fitted: dict[str, Recommender], results: dict[str, list[EvalResult]],
            fit_s: dict[str, list[float]], metrics: list[str], seeds: list[int], card: dict[str, Any],
            candidates: str) -> Report:
    interval = "seeds" if len(seeds) > 1 else "users"
    first_metric = metrics[0]
    rows: list[ModelRow] = []
    base_users: dict[Any, float] | None = None
    for name, res in results.items():
        summaries = [r.summary() for r in res]
        means, halves = {}, {}
        for m in metrics:
            if interval == "seeds" or m not in res[0].per_user:
                means[m], halves[m] = mean_interval(np.array([s[m] for s in summaries]))
            else:
                means[m], halves[m] = mean_interval(res[0].per_user[m])
        per_user = _per_user_mean(res, first_metric)
        row = ModelRow(name=name, params=fitted[name].get_params(), means=means, intervals=halves,
                       fit_seconds=float(np.mean(fit_s[name])), eval_seconds=float(np.mean([r.seconds for r in res])),
                       uses_history=type(fitted[name]).uses_history, per_seed=summaries)
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
