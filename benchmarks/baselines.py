"""Baselines on P1, P2 and P3: each tuned on validation (small grid), then measured on test.

Usage::

    LMREC_DATA_DIR=../shared/datasets .venv/bin/python -m benchmarks.baselines [--protocols P1 P2 P3]

Writes one JSON per protocol in ``benchmarks/results/`` (grid results, chosen parameters, per-metric
test values, times) with the chosen models' per-user test NDCG@10 beside it
(``baselines_P*.per-user.safetensors``), and ``benchmarks/results/baselines.md``: its first screen by
``python -m benchmarks.pages baselines``, intervals and paired tests by :mod:`lmrec.evaluation.stats`
from those per-user values. The chosen settings are copied into ``benchmarks/specs/baselines.toml``, which
measures them again through the one study runner (``lmrec study benchmarks/specs/baselines.toml``).
Selection: the configuration with the best validation NDCG@10; the test split is touched once,
by the chosen configuration only.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmrec.study.provenance import run_info

from lmrec.data import get_protocol
from lmrec.data.splits import Split
from lmrec.evaluation import Evaluator
from lmrec.models import create_model
from lmrec.storage.artifacts import atomic_write_text, save_arrays

from benchmarks.pages import intervals, write

RESULTS = Path(__file__).parent / "results"
TEST_METRICS = ["ndcg@10", "recall@10", "ndcg@20", "recall@20", "hr@10", "mrr@10", "auc", "coverage@10"]
MF_TRAIN = dict(epochs=150, batch_size=4096, eval_every=2, patience=4, progress=False)


def chosen_params(code: str, name: str) -> dict[str, Any]:
    """The validation-chosen parameters of baseline ``name`` on protocol ``code`` (this benchmark's
    results), {} when it has none."""
    path = RESULTS / f"baselines_{code}.json"
    if path.exists():
        for row in json.loads(path.read_text())["rows"]:
            if row["model"] == name:
                return row["params"]
    return {}


def grid(**axes: list[Any]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


def mf_grid(protocol: str) -> list[dict[str, Any]]:
    """BPR-MF grid: loss x negatives x lr (x dim on P1), kept small enough for 2 CPU cores.

    On P1 one run takes 8-20 minutes here. An earlier exploration with uniform negatives of
    dim {64, 128, 256}, negatives {1, 4, 8, 16}, lr {1e-3, 2e-3, 5e-3}, reg {0, 1e-5, 1e-4} and an
    item bias peaked at validation NDCG@10 0.1922 (dim 128, 8 negatives, lr 1e-3, reg 0; test
    0.2365 / Recall 0.1636). Hard negatives (the 8 highest-scoring of 32 uniform candidates under
    the current model: dynamic negative sampling, Zhang et al., SIGIR 2013) lifted validation to
    0.2089 on the same point, so the P1 grid re-runs that point with both losses.
    """
    def point(loss: str, dim: int, n_neg: int, lr: float, reg: float, **cfg: Any) -> dict[str, Any]:
        return {"dim": dim, "loss": loss, "reg": reg, "config": {**MF_TRAIN, "lr": lr, "n_negatives": n_neg, **cfg}}

    if protocol == "P1":
        hard = {"sampler": "hard", "hard_pool": 4}
        return [point("bpr", 128, 8, 1e-3, 0.0, **hard), point("hinge", 128, 8, 1e-3, 0.0, **hard)]
    return [point(loss, 64, n_neg, lr, 1e-4)
            for loss, n_neg, lr in itertools.product(["bpr", "hinge"], [1, 8], [1e-3, 3e-3])]


GRIDS = {
    "random": lambda p: [{}],
    "most-popular": lambda p: [{}],
    "itemknn": lambda p: grid(k=[20, 50, 100, 200, 500], shrink=[0.0, 10.0]),
    "ease": lambda p: grid(lam=[10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0]),
    "bpr-mf": mf_grid,
}


def tune(name: str, split: Split, code: str, log: list[dict[str, Any]]) -> tuple[Any, dict[str, Any], float]:
    """Fit every grid point, score it on validation; return (best model, its params, its fit seconds)."""
    valid_eval = Evaluator(split, ["ndcg@10"], stage="valid")
    best = (None, None, -np.inf, 0.0)
    for params in GRIDS[name](code):
        start = time.perf_counter()
        model = create_model(name, **params).fit(split.train, split.valid)
        fit_s = time.perf_counter() - start
        score = valid_eval.evaluate(model).summary()["ndcg@10"]
        log.append({"model": name, "params": params, "valid_ndcg@10": score, "fit_seconds": fit_s,
                    "best_epoch": getattr(model, "best_epoch_", None)})
        print(f"  {name} {params} valid ndcg@10={score:.4f} fit={fit_s:.1f}s", flush=True)
        if score > best[2]:
            best = (model, params, score, fit_s)
    return best[0], best[1], best[3]


def run_protocol(code: str, data_dir: str | None) -> dict[str, Any]:
    split = get_protocol(code, data_dir)
    print(f"{code} {split.protocol}: {split.counts()}", flush=True)
    test_eval = Evaluator(split, TEST_METRICS)
    rows, log, per_user = [], [], {}
    for name in GRIDS:
        model, params, fit_s = tune(name, split, code, log)
        res = test_eval.evaluate(model)
        per_user[name] = res.per_user["ndcg@10"]
        summary = res.summary()
        rows.append({"model": name, "params": params, "test": summary, "fit_seconds": fit_s,
                     "eval_seconds": res.seconds, "uses_history": type(model).uses_history,
                     "best_epoch": getattr(model, "best_epoch_", None)})
        print(f"  -> {name} test " + " ".join(f"{k}={v:.4f}" for k, v in summary.items()), flush=True)
    save_arrays(RESULTS / f"baselines_{code}.per-user.safetensors",
                {"users": np.asarray(res.users), **{name: np.asarray(v) for name, v in per_user.items()}})
    return {"protocol": split.protocol, "code": code, "card": split.card(), "rows": rows, "grid": log}


def fmt_params(params: dict[str, Any]) -> str:
    flat = {k: v for k, v in params.items() if k != "config"}
    if "config" in params:
        flat.update({k: params["config"][k] for k in ("lr", "n_negatives")})
        if params["config"].get("sampler", "uniform") != "uniform":
            flat.update({k: params["config"][k] for k in ("sampler", "hard_pool")})
    return ", ".join(f"{k}={v}" for k, v in flat.items()) or "—"


def markdown(results: list[dict[str, Any]], command: str, seconds: float) -> str:
    lines = ["# Baselines: P1, P2, P3 (tuned on validation, measured on test)", "",
             f"- command: `{command}`",
             f"- report built {date.today().isoformat()} (each protocol's run date below); machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
             f"torch {torch.__version__}, CPU only; total wall time "
             + (f"{seconds / 60:.0f} min" if seconds else "not recorded"),
             "- selection: best validation NDCG@10 over each model's grid (see the JSON files for every point);",
             "  test is evaluated once, full ranking over all items, training (and, on P2, validation) items removed.",
             "- ± is a 95% interval over users; p is a paired Wilcoxon test per user on NDCG@10 against the best row.",
             "- † (P2) an ID model fixed at fit time cannot read the validation item as history at test time.", ""]
    for res in results:
        c = res["card"]["counts"]
        lines += [f"## {res['code']} `{res['protocol']}` — {c['users']} users, {c['items']} items, "
                  f"train/valid/test {c['train']}/{c['valid']}/{c['test']}", "",
                  f"Run {res.get('date', 'undated')}: `{res.get('command', 'python -m benchmarks.baselines')}`"
                  + (f", commit `{res['commit']}`, {res['machine']}." if "commit" in res else " (commit not recorded).")
                  + (f" {res['note']}" if res.get("note") else ""), "",
                  "| model | chosen parameters | NDCG@10 | Recall@10 | NDCG@20 | Recall@20 | HR@10 | MRR@10 | AUC "
                  "| Cov@10 | fit s | eval s | p vs best |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        spread = intervals(res)
        for r in res["rows"]:
            t = r["test"]
            name = r["model"] + ("" if r["uses_history"] or res["code"] != "P2" else " †")
            half, p_best = spread[r["model"]]
            p = "best" if p_best is None else f"{p_best:.1e}"
            lines.append(f"| {name} | {fmt_params(r['params'])} | {t['ndcg@10']:.4f} ± {half:.4f} | "
                         f"{t['recall@10']:.4f} | {t['ndcg@20']:.4f} | {t['recall@20']:.4f} | {t['hr@10']:.4f} | "
                         f"{t['mrr@10']:.4f} | {t['auc']:.4f} | {t['coverage@10']:.3f} | {r['fit_seconds']:.1f} | "
                         f"{r['eval_seconds']:.2f} | {p} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocols", nargs="+", default=["P1", "P2", "P3"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--models", nargs="+", default=list(GRIDS), help="subset of the models to run")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild baselines.md from the JSON files of --protocols without running anything")
    args = parser.parse_args(argv)
    for name in list(GRIDS):
        if name not in args.models:
            GRIDS.pop(name)
    RESULTS.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = []
    for code in args.protocols:
        path = RESULTS / f"baselines_{code}.json"
        if args.report_only:
            results.append(json.loads(path.read_text()))
            continue
        res = run_protocol(code, args.data_dir)
        res.update(run_info())  # command, date, machine (torch threads), versions, git commit
        res["command"] = "python -m benchmarks.baselines " + " ".join(sys.argv[1:] if argv is None else argv)
        res["seconds"] = time.perf_counter() - start
        atomic_write_text(path, json.dumps(res, indent=2, default=float) + "\n")
        results.append(res)
    if args.report_only:
        commands = sorted({r.get("command", "python -m benchmarks.baselines") for r in results})
        return _write(results, " and ".join(commands), sum(r.get("seconds", 0.0) for r in results))
    command = "python -m benchmarks.baselines " + " ".join(sys.argv[1:] if argv is None else argv)
    return _write(results, command.strip(), time.perf_counter() - start)


def _write(results: list[dict[str, Any]], command: str, seconds: float) -> int:
    atomic_write_text(RESULTS / "baselines.md", markdown(results, command, seconds))
    print(write("baselines").read_text())  # the first screen on top of it
    return 0


if __name__ == "__main__":
    sys.exit(main())
