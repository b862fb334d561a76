"""LMRanker against ID baselines: cost, ablations, multi-seed comparisons, cold-start items.

Usage::

    LMREC_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/lm_ranker.py \
        --sections cost ablation-P2 compare-P2 cold-P4 ablation-P3 select-P1 compare-P1

Each section writes ``benchmarks/results/lm_ranker_<section>.json`` (with ``--note``, a remark
shown in the table; ablations with ``--reuse`` keep rows whose result cannot have changed); the
Markdown table ``benchmarks/results/lm_ranker.md`` is rebuilt from every JSON present, so
sections can be run separately. Model selection always uses validation NDCG@10; test is read for the chosen
configurations (the ablation table shows test for every point, marked as such).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmrec.data import get_protocol
from lmrec.evaluation import Evaluator
from lmrec.experiments.compare import compare
from lmrec.losses import Hinge
from lmrec.models import EASE, BPRMF, LightGCN, LMRanker, MostPopular, Random, TextKNN
from lmrec.models.lm import USER_TOWERS, Cosine, Dot, ItemTower
from lmrec.storage.artifacts import atomic_write_text
from lmrec.text.options import Encoder
from lmrec.training import TrainConfig
from lmrec.training.pairwise import FULL_CATALOGUE

sys.path.insert(0, str(Path(__file__).parent))
from common import baseline_params, run_info  # noqa: E402

TOWERS = tuple(USER_TOWERS)

RESULTS = Path(__file__).parent / "results"
CACHE = str(Path.home() / ".cache" / "lmrec" / "embeddings")
METRICS = ["ndcg@10", "recall@10", "ndcg@20", "recall@20", "hr@10", "mrr@10", "auc", "coverage@10"]
TRAIN = dict(epochs=100, batch_size=1024, lr=1e-3, weight_decay=0.0, eval_every=1, patience=3, plateau_decay=1.0,
             progress=False)
BASE = dict(dim=64, user_tower="mean", loss="softmax", scorer="cosine", temperature=0.07, graph_layers=0,
            id_mode="none", dropout=0.1, cache_dir=CACHE)
NEGATIVES = {"softmax": 64, "bpr": 8, "hinge": 8}
TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}
CURRENT_SINCE = "2026-11-29"  # the last change to the code paths an ablation row measures
SEARCH_FILES = {"P1": "lm_ranker_select-P1.json", "P2": "lm_ranker_ablation-P2.json", "P3": "lm_ranker_ablation-P3.json"}


def lm(params: dict[str, Any], **train: Any) -> LMRanker:
    """An LMRanker from this benchmark's flat parameters (the names of lmrec 0.1's LMRanker, kept so
    the rows recorded before the parts redesign keep their keys); TrainConfig fields among them
    (sampler, lr) go to training."""
    p = {**BASE, **params}
    own = {k: p.pop(k) for k in list(p) if k in TRAIN_FIELDS}
    cfg = {**TRAIN, "n_negatives": NEGATIVES[p["loss"]], **own, **train}
    return LMRanker(**parts(p), config=cfg)


def parts(p: dict[str, Any]) -> dict[str, Any]:
    """lmrec 0.1's flat LMRanker parameters as the parts of the current one."""
    if p.get("heads", 1) > 1:  # measured nothing; removed in the parts redesign (rows kept from earlier runs)
        raise ValueError(f"cosine heads ({p['heads']}) are not part of the current LMRanker")
    ids = p["id_mode"] in ("hybrid", "items")
    user: dict[str, Any] = {"type": p["user_tower"], "ids": p["id_mode"] == "hybrid"}
    if p["user_tower"] == "mean":
        user.update(history_dropout=p.get("history_dropout", 0.0), shared_negatives=p.get("shared_negatives", False))
    else:
        user["max_history"] = p.get("max_history", 50)
    if p["user_tower"] == "sequence":
        user["dropout"] = p["dropout"]
    return {"encoder": Encoder(p.get("encoder", "minilm"), backend=p.get("encoder_backend", "hf")),
            "items": ItemTower(dim=p["dim"], projection=p.get("projection", "linear"), dropout=p["dropout"], ids=ids,
                               history_ids=p.get("history_ids", False), graph_layers=p["graph_layers"]),
            "user": user, "scorer": Cosine(p["temperature"]) if p["scorer"] == "cosine" else Dot(),
            "loss": Hinge(p.get("margin", 1.0)) if p["loss"] == "hinge" else p["loss"],
            "cache_dir": p.get("cache_dir", CACHE)}


def negatives(params: dict[str, Any]) -> str:
    """How a configuration draws negatives, for the tables."""
    p = {**BASE, **params}
    kind = {"all": "all items", "unseen": "all unseen items"}.get(p.get("sampler"), f"{NEGATIVES[p['loss']]} uniform")
    return kind + (", scored once per user" if p.get("shared_negatives") else "")


def scorer(params: dict[str, Any]) -> str:
    """The scorer with its heads, for the tables."""
    heads = params.get("heads", 1)
    split = f", {heads} heads" + (" (each its own loss)" if params.get("separate_heads") else "") if heads > 1 else ""
    return params["scorer"] + split


def section_cost(args: argparse.Namespace) -> dict[str, Any]:
    """Encoding throughput (uncached), per-epoch training time, peak memory, latency per user, and
    the full training of each protocol's chosen configuration from an empty embedding cache."""
    out: dict[str, Any] = {}
    for code in ("P1", "P2"):
        split = get_protocol(code, args.data_dir)
        with tempfile.TemporaryDirectory() as tmp:
            model = lm({"cache_dir": tmp}, epochs=1)
            start = time.perf_counter()
            model.fit(split.train)
            enc = model.text_.stats["items"]
            total = time.perf_counter() - start
        out[code] = {"texts": enc["texts"], "encode_seconds": enc["seconds"],
                     "texts_per_second": round(enc["texts"] / max(enc["seconds"], 1e-9), 1),
                     "mean_text_chars": round(float(np.mean([len(t) for t in model.text_.item_texts()])), 1),
                     "epoch_seconds": model.training_log_[0]["train_seconds"], "fit_seconds_1_epoch": round(total, 1)}
        users = np.arange(min(200, split.n_users))
        lat = []
        for u in users:
            t0 = time.perf_counter()
            model.recommend([int(u)], k=10)
            lat.append(time.perf_counter() - t0)
        out[code]["latency_ms_p50"] = round(1000 * float(np.median(lat)), 2)
        out[code]["latency_ms_p99"] = round(1000 * float(np.quantile(lat, 0.99)), 2)
        with tempfile.TemporaryDirectory() as tmp:  # the chosen configuration, from an empty cache
            model = chosen_model(code, cache_dir=tmp)
            start = time.perf_counter()
            model.fit(split.train, split.valid)
            out[code]["full_fit"] = {"params": model.get_params(), "seconds": round(time.perf_counter() - start, 1),
                                     "encode_seconds": round(model.text_.stats["items"]["seconds"], 1),
                                     "epochs": len(model.training_log_), "best_epoch": model.best_epoch_,
                                     "valid_ndcg@10": Evaluator(split, ["ndcg@10"], stage="valid").evaluate(model)
                                     .summary()["ndcg@10"],
                                     "test_ndcg@10": Evaluator(split, ["ndcg@10"]).evaluate(model).summary()["ndcg@10"]}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def reusable_rows(code: str) -> dict[str, dict[str, Any]]:
    """Rows of the previous ablation (P1: selection) run whose result cannot have changed since, by
    their parameters: every row run on or after CURRENT_SINCE, and earlier rows other than the
    sequence tower (its training moved to shared causal windows with a recency bias) and, where
    runs are time-capped, graph propagation (its backward became ~10x faster, so more epochs fit
    in the cap)."""
    path = RESULTS / SEARCH_FILES[code]
    if not path.exists():
        return {}
    old = json.loads(path.read_text())

    def unchanged(row: dict[str, Any]) -> bool:
        p = {**BASE, **row["params"]}
        return row.get("run_date", "") >= CURRENT_SINCE or \
            (p["user_tower"] != "sequence" and not (p["graph_layers"] and code in ABLATION_MINUTES))

    return {json.dumps(r["params"], sort_keys=True): {**r, "run_date": r.get("run_date", old.get("date", "previous run"))}
            for r in old["rows"] if unchanged(r)}


def best_params(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of the validation-best row."""
    return max(rows, key=lambda r: r["valid_ndcg@10"])["params"]


def runner(code: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], Any]:
    """(rows, run): ``run(params)`` fits one configuration on ``code`` (reusing a previous row where
    allowed), appends its row (validation and test NDCG@10, cost) to ``rows`` and returns it."""
    split = get_protocol(code, args.data_dir)
    valid = Evaluator(split, ["ndcg@10"], stage="valid")
    test = Evaluator(split, ["ndcg@10", "recall@10"])
    rows: list[dict[str, Any]] = []
    previous = reusable_rows(code) if args.reuse else {}

    def run(params: dict[str, Any]) -> dict[str, Any]:
        key = json.dumps(params, sort_keys=True)
        done = [r for r in rows if json.dumps(r["params"], sort_keys=True) == key]
        if done:  # a start row that coincides with a later step is run (and listed) once
            return done[0]
        if key in previous:
            rows.append({**previous[key], "reused": True})
            print(f"  {code} {params} reused from {previous[key]['run_date']}", flush=True)
            return rows[-1]
        model = lm(params, max_minutes=ABLATION_MINUTES.get(code))
        start = time.perf_counter()
        model.fit(split.train, split.valid)
        fit_s = time.perf_counter() - start
        row = {"params": params, "valid_ndcg@10": valid.evaluate(model).summary()["ndcg@10"],
               **{f"test_{k}": v for k, v in test.evaluate(model).summary().items()},
               "fit_seconds": round(fit_s, 1), "epochs": len(model.training_log_), "best_epoch": model.best_epoch_,
               "seconds_per_epoch": round(float(np.mean([r["train_seconds"] for r in model.training_log_])), 2),
               "run_date": date.today().isoformat()}
        print(f"  {code} {params} valid={row['valid_ndcg@10']:.4f} test={row['test_ndcg@10']:.4f} "
              f"fit={fit_s:.0f}s", flush=True)
        rows.append(row)
        return row

    return rows, run


# P2's comparison is decided against EASE by a few thousandths, so its ablation ends with the
# cosine temperature (sharper than 0.07: a softer one lowered P2 validation), the sequence
# tower's dropout, decoupled weight decay, and a learning rate halved at each evaluation without
# improvement (restarting from the best weights; one more evaluation of patience), each on the
# best so far.
TUNING: dict[str, tuple[dict[str, Any], ...]] = {
    "P2": ({"temperature": 0.05}, {"temperature": 0.03}, {"dropout": 0.3},
           {"weight_decay": 1.0}, {"weight_decay": 3.0}, {"weight_decay": 10.0},
           {"plateau_decay": 0.5, "patience": 4}),
}


def ablation(code: str, args: argparse.Namespace) -> dict[str, Any]:
    """loss x user tower (graph off, ID-free), then graph and id_mode on the best of those, then
    negatives from the whole catalogue (full softmax), with and without the user's other training
    items, on each user tower's best configuration; then d = 128 on the best of all; last, the
    protocol's tuning steps (TUNING), each on the best so far."""
    rows, run = runner(code, args)
    for loss in ("bpr", "hinge", "softmax"):
        for tower in ("mean", "attention", "sequence"):
            run({"loss": loss, "user_tower": tower})
    best = best_params(rows)
    for graph, id_mode in ((2, "none"), (0, "hybrid"), (2, "hybrid")):
        run({**best, "graph_layers": graph, "id_mode": id_mode})
    for tower in TOWERS:  # full softmax on each user tower's best configuration so far
        best = best_params([r for r in rows
                            if {**BASE, **r["params"]}["user_tower"] == tower and "sampler" not in r["params"]])
        for sampler in ("all", "unseen"):
            run({**best, "sampler": sampler})
    run({**best_params(rows), "dim": 128})  # a wider model on the best
    for extra in TUNING.get(code, ()):
        run({**best_params(rows), **extra})
    chosen = best_params(rows)
    return {"protocol": code, "rows": rows, "chosen": chosen}


# The catalogue scored once per user of a batch (LMRanker.shared_negatives): an epoch costs about
# one catalogue row per user instead of one per interaction, so many more epochs fit in the cap;
# then with 4x larger batches (and learning rate), about 30 users a batch instead of 8; then, with
# the time this frees, larger batches still and a wider model. Then, since runs now stop early well
# inside the cap: a longer patience (two more halvings), the dot scorer (norms free to carry
# popularity), the MLP projection, 2 and 4 cosine heads (mean of the parts' cosines), 2 heads each
# trained on its own loss (two d/2 models side by side, an ensemble), temperatures either side
# of 0.15, a third graph layer, the MLP projection at d = 128 (at d = 256 it reached the cap
# while still improving), and item IDs without user IDs (a user is then its history alone). Then the
# user side: history dropout (each step's mean reads a random 80% of each history), a second item ID
# table for the history role (history_ids: asymmetric item roles, as in FISM), and history dropout
# again on that larger model.
SHARED_STEPS = ({"shared_negatives": True}, {"shared_negatives": True, "batch_size": 4096, "lr": 4e-3},
                {"batch_size": 8192, "lr": 8e-3}, {"dim": 256}, {"patience": 6},
                {"scorer": "dot"}, {"projection": "mlp"}, {"heads": 2}, {"heads": 4},
                {"heads": 2, "separate_heads": True}, {"temperature": 0.125}, {"temperature": 0.175},
                {"graph_layers": 3}, {"projection": "mlp", "dim": 128}, {"id_mode": "items"},
                {"history_dropout": 0.2}, {"history_ids": True}, {"history_dropout": 0.2})


def select_p1(args: argparse.Namespace) -> dict[str, Any]:
    """P1's configuration, chosen on P1's validation: the order-free P3 choice as the start, then full
    softmax over unseen items with the mean and attention towers, then hybrid IDs, graph propagation,
    a wider model (d = 128, 256), a lower learning rate, a softer cosine temperature, a higher
    learning rate (the softer runs were still improving at the time cap), decoupled weight decay
    and a learning rate halved on each plateau (as P2's last step), then larger batches with the
    learning rate scaled alike (fewer steps per epoch, so more epochs and halvings inside the time
    cap), then the catalogue scored once per user of a batch (SHARED_STEPS), each on the best so
    far (P1 has no timestamps, so no sequence tower). Each run within P1's budget."""
    rows, run = runner("P1", args)
    run(chosen_lm("P3", order_free=True))
    for tower in ("mean", "attention"):
        run({"loss": "softmax", "user_tower": tower, "sampler": "unseen"})
    for extra in ({"id_mode": "hybrid"}, {"graph_layers": 2}, {"dim": 128}, {"dim": 256}, {"lr": 3e-4},
                  {"temperature": 0.1}, {"temperature": 0.15}, {"temperature": 0.2},
                  {"lr": 2e-3}, {"weight_decay": 0.3}, {"plateau_decay": 0.5, "patience": 4},
                  {"batch_size": 2048, "lr": 2e-3}, {"batch_size": 4096, "lr": 4e-3}, *SHARED_STEPS):
        run({**best_params(rows), **extra})
    chosen = best_params(rows)
    return {"protocol": "P1", "rows": rows, "chosen": chosen}


def chosen_lm(code: str, order_free: bool = False) -> dict[str, Any]:
    """The validation-best configuration of ``code``'s ablation (P1: its selection section);
    ``order_free`` skips the sequence tower (P1 has no timestamps, so a time-ordered history does
    not exist there)."""
    path = RESULTS / SEARCH_FILES[code]
    if not path.exists():
        return {}
    rows = [r for r in json.loads(path.read_text())["rows"]
            if not order_free or {**BASE, **r["params"]}["user_tower"] != "sequence"]
    return best_params(rows)


# The budgets the issue sets for a full training, encoding included: P1 15 minutes (in its selection
# runs and in the comparison alike), P2 5 minutes (its comparison and cost runs; encoding from an
# empty cache takes 28-35 s of it). Training stops before an epoch that would overrun.
BUDGET_MINUTES = {"P1": 14.0, "P2": 4.25}
# The P3 ablation caps each run's training time (P3 has more pairs than P2; graph propagation and
# hybrid IDs make an epoch several times dearer than the plain towers).
ABLATION_MINUTES = {"P3": 8.0, "P1": BUDGET_MINUTES["P1"]}
LIGHTGCN_MINUTES = {"P1": 15.0}


def id_baselines(code: str) -> dict[str, Any]:
    mf = baseline_params(code, "bpr-mf") or {"dim": 64, "config": {"n_negatives": 8}}
    return {
        "most-popular": MostPopular(),
        "ease": EASE(**(baseline_params(code, "ease") or {"lam": 500.0})),
        "bpr-mf": BPRMF(**{**mf, "config": {**mf.get("config", {}), "progress": False}}),
        "lightgcn": LightGCN(dim=64, layers=2, reg=1e-4,
                             config={**TRAIN, "batch_size": 2048, "n_negatives": 8, "eval_every": 2,
                                     "max_minutes": LIGHTGCN_MINUTES.get(code)}),
    }


def chosen_model(code: str, **params: Any) -> LMRanker:
    """The LMRanker a comparison on ``code`` uses: its ablation's (P1: selection's) choice, trained
    within the protocol's budget."""
    return lm({**chosen_lm(code), **params}, max_minutes=BUDGET_MINUTES.get(code))


def section_compare(code: str, args: argparse.Namespace) -> dict[str, Any]:
    lm_model = chosen_model(code)
    models = {"lm-ranker": lm_model, **id_baselines(code)}  # first: paired tests against the LM ranker
    report = compare(models, code, METRICS, seeds=args.seeds, data_dir=args.data_dir, progress=False,
                     cache_dir=None if args.result_cache == "none" else Path(args.result_cache) / code)
    report.save(RESULTS / f"lm_ranker_compare-{code}")
    print(report, flush=True)
    return {"protocol": code, "markdown": report.to_markdown(), "seeds": args.seeds, "lm_params": lm_model.get_params(),
            "rows": [{"model": r.name, "means": r.means, "intervals": r.intervals, "fit_seconds": r.fit_seconds}
                     for r in report.rows]}


def section_cold(args: argparse.Namespace) -> dict[str, Any]:
    split = get_protocol("P4", args.data_dir)
    params = chosen_lm("P2")
    models = {"lm-ranker (id_mode=none)": chosen_model("P2", id_mode="none")}
    if params.get("sampler") in FULL_CATALOGUE:  # the same with sampled negatives: what full softmax does to cold items
        models[f"lm-ranker (id_mode=none, {NEGATIVES[params['loss']]} uniform negatives)"] = \
            chosen_model("P2", id_mode="none", sampler="uniform")
    models = {**models, "text-knn": TextKNN(cache_dir=CACHE),
              **{k: v for k, v in id_baselines("P2").items() if k != "lightgcn"}, "random": Random()}
    rows = []
    for name, model in models.items():
        model.fit(split.train, split.valid)
        cold = Evaluator(split, ["ndcg@10", "recall@10"], candidates="cold").evaluate(model).summary()
        full = Evaluator(split, ["ndcg@10", "recall@10"]).evaluate(model).summary()
        rows.append({"model": name, "cold_ndcg@10": cold["ndcg@10"], "cold_recall@10": cold["recall@10"],
                     "all_ndcg@10": full["ndcg@10"], "all_recall@10": full["recall@10"]})
        print(f"  P4 {name} {rows[-1]}", flush=True)
    warm = None
    path = RESULTS / "lm_ranker_compare-P2.json"
    if path.exists():
        warm = next(r["means"]["ndcg@10"] for r in json.loads(path.read_text())["rows"] if r["model"] == "lm-ranker")
    return {"protocol": "P4", "rows": rows, "warm_ndcg@10_P2": warm, "cold_items": int(len(split.cold_items))}


SECTIONS = {"cost": section_cost, "ablation-P2": lambda a: ablation("P2", a), "ablation-P3": lambda a: ablation("P3", a),
            "select-P1": select_p1,
            "compare-P2": lambda a: section_compare("P2", a), "compare-P1": lambda a: section_compare("P1", a),
            "cold-P4": section_cold}


def without_note(command: str, note: str | None) -> str:
    """A section's command for the tables, its ``--note`` text (shown beside it) left out."""
    return command.replace(note, '"<the note>"') if note else command


def markdown(command: str) -> str:
    lines = ["# LMRanker benchmark", "",
             f"- last command: `{command}`",
             (f"- report built {date.today().isoformat()} (each section names its run); machine: "
              f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, CPU only; encoder "
              "all-MiniLM-L6-v2 (384-d, packaged)"),
             "- selection by validation NDCG@10; full ranking over all items; see the JSON files beside this one.",
             ("- **Superseded where it overlaps [finetune.md](finetune.md).** The runs below were bounded by "
              "wall-clock caps (`TrainConfig.max_minutes`, named in each section), so on a loaded or a faster machine "
              "they stop at another epoch; results recorded before 2026-12-01 carry no git commit. The epoch-bounded, "
              "validation-chosen figures of the same P2/P3 configurations and of P4 are in finetune.md. Search "
              "tables here show validation only (a few older notes under them still quote test figures of rows off "
              "the chosen path, written before the reporting rules); each comparison's section gives its chosen "
              "row's test."),
             ""]
    cost = RESULTS / "lm_ranker_cost.json"
    if cost.exists():
        c = json.loads(cost.read_text())
        lines += ["## Cost on this machine", "",
                  "| protocol | texts | mean chars | encode texts/s (uncached) | s / epoch (mean tower, softmax) "
                  "| ranking latency per user p50 / p99 (ms) |", "|---|---|---|---|---|---|"]
        for code in ("P1", "P2"):
            r = c[code]
            lines.append(f"| {code} | {r['texts']} | {r['mean_text_chars']} | {r['texts_per_second']} | "
                         f"{r['epoch_seconds']} | {r['latency_ms_p50']} / {r['latency_ms_p99']} |")
        lines += ["", f"Peak resident memory of the cost run: {c['peak_rss_mb']} MB.", "",
                  *([c["note"], ""] if c.get("note") else [])]
        for code in ("P1", "P2"):
            f = c[code].get("full_fit")
            if f:
                scores = (f"; seed 2026: valid NDCG@10 {f['valid_ndcg@10']:.4f}, test {f['test_ndcg@10']:.4f}"
                          if "valid_ndcg@10" in f else "")
                lines += [f"Full training of the {code} comparison's configuration from an empty embedding cache: "
                          f"{f['seconds']:.0f} s ({f['encode_seconds']:.0f} s of it encoding; {f['epochs']} epochs, "
                          f"best {f['best_epoch']}{scores}).", ""]
    for code, title in (("P2", "Ablation on P2"), ("P3", "Ablation on P3"),
                        ("P1", "Configuration search on P1 (order-free towers)")):
        path = RESULTS / SEARCH_FILES[code]
        if not path.exists():
            continue
        res = json.loads(path.read_text())
        cap = ABLATION_MINUTES.get(code)
        lines += [f"## {title} (ID-free unless stated; chosen: `{res['chosen']}`)", "",
                  *([f"Each run's training is capped at {cap:g} minutes (`TrainConfig.max_minutes`); "
                     "a run that stopped below its early-stopping point shows it in the epochs column.", ""]
                    if cap else []),
                  *([res["note"], ""] if res.get("note") else []),
                  "| loss | negatives | user tower | graph layers | id_mode | d | scorer | projection | batch | lr | τ | "
                  "dropout | weight decay | lr decay on plateau (patience) | valid NDCG@10 | "
                  "epochs (best) | s / epoch | run |", "|" + "---|" * 18]
        for r in res["rows"]:
            p = {**BASE, **TRAIN, **r["params"]}
            lines.append(f"| {p['loss']} | {negatives(p)} | {p['user_tower']} | {p['graph_layers']} | "
                         f"{p['id_mode']}{' + history IDs' if p.get('history_ids') else ''} | "
                         f"{p['dim']} | {scorer(p)} | {p.get('projection', 'linear')} | {p['batch_size']} | "
                         f"{p['lr']:g} | {p['temperature']:g} | {p['dropout']:g}"
                         f"{f', history {h:g}' if (h := p.get('history_dropout')) else ''} | "
                         f"{p['weight_decay']:g} | "
                         f"{'none' if p['plateau_decay'] == 1 else format(p['plateau_decay'], 'g')} ({p['patience']}) | "
                         f"{r['valid_ndcg@10']:.4f} | "
                         f"{r['epochs']} ({r['best_epoch']}) | {r['seconds_per_epoch']} | {r.get('run_date', 'earlier')}"
                         f"{' (kept)' if r.get('reused') else ''} |")
        lines.append("")
    for code in ("P1", "P2"):
        path = RESULTS / f"lm_ranker_compare-{code}.json"
        if path.exists():
            res = json.loads(path.read_text())
            lines += [f"## {code}: LMRanker against ID baselines", "",
                      f"Seeds {res['seeds']}; section command `{without_note(res['command'], res.get('note'))}`, "
                      f"{res['seconds'] / 60:.0f} min. "
                      f"LMRanker configuration: `{res.get('lm_params', 'see the ablation')}`."
                      + (f" {res['note']}" if res.get("note") else ""), "",
                      res["markdown"], ""]
    path = RESULTS / "lm_ranker_cold-P4.json"
    if path.exists():
        res = json.loads(path.read_text())
        lines += [f"## P4 cold-start items ({res['cold_items']} cold items; test = interactions with them)", "",
                  "| model | cold-only NDCG@10 | cold-only Recall@10 | all-items NDCG@10 | all-items Recall@10 |",
                  "|---|---|---|---|---|"]
        for r in res["rows"]:
            lines.append(f"| {r['model']} | {r['cold_ndcg@10']:.4f} | {r['cold_recall@10']:.4f} | "
                         f"{r['all_ndcg@10']:.4f} | {r['all_recall@10']:.4f} |")
        if res.get("warm_ndcg@10_P2"):
            lines += ["", f"Warm NDCG@10 of the same LMRanker configuration on P2: {res['warm_ndcg@10_P2']:.4f}."]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[2026, 2027, 2028])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--note", default=None, help="a remark stored with each section's result and shown in "
                                                     "the table (e.g. that the run shared the CPU)")
    parser.add_argument("--reuse", action="store_true",
                        help="ablations: keep the previous run's rows whose result cannot have changed since "
                             "(see reusable_rows) instead of training them again")
    parser.add_argument("--result-cache", default=str(Path.home() / ".cache" / "lmrec" / "compare"),
                        help="comparisons: folder of finished (model, parameters, seed) evaluations, reused "
                             "instead of training again ('none': train everything); clear it after changing "
                             "a model's code")
    parser.add_argument("--report-only", action="store_true", help="rebuild lm_ranker.md from the JSON files")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        last = json.loads((RESULTS / "lm_ranker_select-P1.json").read_text())  # the last section run
        atomic_write_text(RESULTS / "lm_ranker.md", markdown(without_note(last["command"].strip(), last.get("note"))))
        return 0
    command = "python benchmarks/lm_ranker.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for name in args.sections:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        res = SECTIONS[name](args)
        res.update(run_info())  # UTC date, machine with torch threads, versions, git commit
        res["seconds"] = round(time.perf_counter() - start, 1)
        res["command"] = command
        res["date"] = date.today().isoformat()
        if args.note:
            res["note"] = args.note
        atomic_write_text(RESULTS / f"lm_ranker_{name}.json", json.dumps(res, indent=2, default=float) + "\n")
        atomic_write_text(RESULTS / "lm_ranker.md", markdown(without_note(command.strip(), args.note)))
    print((RESULTS / "lm_ranker.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
