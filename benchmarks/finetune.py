"""Before and after fine-tuning: encoder x tuning on P2, P3 and P4-cold, seeds 2026-2028.

The grid is ``benchmarks/specs/finetune.toml``: ``[grid.*]`` sections of models ``ENCODER:TUNING`` (or a
baseline) x protocols x seeds, whose cells this script computes with its recipe "finetune" (two stages:
``lora`` and ``full`` train the encoder with the ranking loss starting from the frozen model of the same
seed; ``co``: co-interaction pre-fine-tuning, then frozen; ``ease-blend``: the frozen ranker and EASE as
one ``Blend``; ``lora-cold`` on P4: LoRA for the epochs read on the cold validation; baselines ``ease``,
``text-knn``, ``text-knn-mpnet``). Encoders: MiniLM 22M, MPNet 110M, SmolLM2 135M decoder. Each cell is
a cell of the one study store (``benchmarks/results/finetune/cells``: JSON + per-user values, keyed by
(protocol, encoder, tuning, seed, search), each naming the code that computed it), run by the one runner in
its own forked process, so the grid resumes where it stopped and grows cell by cell. Stored cells are kept
whatever code computed them (the spec's ``keep_stale``: they cost hours; ``--recompute-stale``
recomputes those of another code version); ``report`` rebuilds ``benchmarks/results/finetune.md``.

    LMREC_DATA_DIR=../shared/datasets HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.finetune run [--grids minilm]
    .venv/bin/python -m benchmarks.finetune report

``lmrec study benchmarks/specs/finetune.toml`` refuses the spec (its recipe is this script's). On a GPU
machine add ``--device cuda`` (training, encoding and the catalogue refreshes run there).
``search-cold`` and ``search-cold-tune`` choose P4's configuration and its tuned epochs on a cold
validation; ``--encoder-lr``, ``--refresh-every`` and ``--grad-items`` write validation-only search
rows.

Configurations are bounded by epochs (no wall-clock cap) and were fixed on validation
(``search``) before any test figure was read; see CONFIG below.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.study.provenance import RESULTS, peak_rss_mb, run_info
from lmrec.study.cells import training_cost

from lmrec.data import cold_validation, get_protocol
from lmrec.evaluation import Evaluator
from lmrec.models import EASE, Blend, LMRanker, Recommender, TextKNN
from lmrec.models.lm import Cosine, ItemTower, MeanUser, SequenceUser
from lmrec.models.text_side import TextSide
from lmrec.training.negatives import Uniform, Unseen
from lmrec.study.grid import Recipe
from lmrec.study.plan import run_study
from lmrec.study.runner import Cell, run_cells
from lmrec.study.spec import GridSection, StudySpec, load_spec
from lmrec.study.store import CellStore
from lmrec.text.options import Encoder, Frozen, FullTune, LoRA, Tuning
from lmrec.text.pretune import CoInteraction, pretune
from lmrec.text.tuning import count_parameters

OUT = RESULTS / "finetune"
SPEC = Path(__file__).parent / "specs" / "finetune.toml"  # the grid
BASELINES = ("ease", *("text-knn", "text-knn-mpnet"))  # grid models that are not ENCODER:TUNING
MODELS = Path.home() / ".cache" / "lmrec" / "finetune"  # frozen stage-1 models and pre-tuned encoders (not committed)
SMOKE: dict[str, Any] = {}  # --smoke: one epoch per stage, results and models in a scratch folder
DEVICE = {"device": "cpu"}  # --device: where training and encoding run (every stage of a cell)
# --encoder-lr, --refresh-every, --grad-items: a validation-only search row, kept apart in OUT / "search"
SEARCH: dict[str, Any] = {}
CACHE = str(Path.home() / ".cache" / "lmrec" / "embeddings")
MAX_LENGTH = {"P2": 64, "P4": 64, "P3": 32}  # Amazon texts ~45 tokens, MovieLens titles ~15
# stage 2 (lora / full): the encoder's own learning rate; heads continue at a quarter of stage 1's
ENCODER_LR = {"lora": 5e-4, "full": 5e-5}
STAGE2 = dict(epochs=6, patience=2, plateau_decay=0.5)
# items encoded with gradients per step (the rest of the catalogue from the refreshed table): a SmolLM2
# LoRA step costs ~10x MiniLM's on these CPUs (13 s per 64 texts on 2 threads), so it gets a quarter
GRAD_ITEMS = {"smollm2": 32}
TUNINGS = ("frozen", "lora", "full", "co", "lora-cold")
TUNED = {"lora": "lora", "lora-cold": "lora", "full": "full"}  # tunings that train the encoder -> its tuning part
# lora-cold (P4 only): LoRA for a fixed number of epochs read on the cold validation (search-cold-tune),
# where the lora cells keep the epoch of the best warm validation; "chosen" is that search's best epoch
# (search-cold-tune, seed 2026: every epoch at or above the start, the first the highest)
COLD_TUNE: dict[str, Any] = {"epochs": 6, "chosen": 1}
BLEND = "ease-blend"  # not a tuning: the frozen ranker and EASE as one Blend, weights chosen on validation
EASE_LAM = {"P2": 50.0, "P4": 50.0, "P3": 100.0}  # EASE's validation-chosen λ (benchmarks/baselines.py)
TEXT_KNN = {"text-knn": "minilm", "text-knn-mpnet": "mpnet"}  # baseline name -> its frozen encoder


# P4 candidates, chosen on a cold validation built from P4's training data alone (search-cold):
# name -> changes to the P4 configuration below. "d 384 from the identity": d is the encoder's text
# size (dim=None), 384 for MiniLM (the search's encoder), 768 for MPNet, 576 for SmolLM2
COLD_CANDIDATES: dict[str, dict[str, Any]] = {
    "sequence, d 128": {},
    "mean, d 128": {"user": MeanUser()},
    "mean, d 384 from the identity": {"user": MeanUser(), "items": ItemTower(dim=None, identity_init=True)},
    "sequence, d 384 from the identity": {"items": ItemTower(dim=None, identity_init=True)},
}
# the validation-best of COLD_CANDIDATES (see the search table; "sequence, d 384 from the identity"
# was stopped unfinished after 30 minutes, at commit 44fce8e, and is not a candidate)
P4_CHOICE = "mean, d 384 from the identity"


def base_config(code: str, seed: int, **train: Any) -> dict[str, Any]:
    """The frozen model's parts and TrainConfig per protocol (P2/P3: the configurations chosen on
    their validation before the redesign; P4: ID-free, no graph (an item without interactions gets
    no propagation), cold items out of the negatives, then P4_CHOICE of the cold validation)."""
    if code == "P3":  # sequence tower with item and user IDs, 2 graph layers, 64 uniform negatives
        cfg = dict(epochs=60, batch_size=1024, lr=1e-3, patience=3, seed=seed)
        parts = dict(items=ItemTower(dim=64, ids=True, graph_layers=2), user=SequenceUser(ids=True),
                     scorer=Cosine(0.07), negatives=Uniform(64))
    else:  # P2 (and P4 without the graph and with cold items out of the negatives)
        cfg = dict(epochs=60, batch_size=1024, lr=1e-3, weight_decay=3.0, patience=4, plateau_decay=0.5, seed=seed)
        graph = 0 if code == "P4" else 2
        pool = "train-items" if code == "P4" else "all-items"  # P4: cold items are never negatives
        parts = dict(items=ItemTower(dim=128, graph_layers=graph), user=SequenceUser(), scorer=Cosine(0.05),
                     negatives=Unseen(pool))
        if code == "P4":
            parts.update(COLD_CANDIDATES[SEARCH.get("cold", P4_CHOICE)])
    config = {**cfg, "progress": False, **DEVICE, **train, **SMOKE}
    return {**parts, "loss": "softmax", "cache_dir": CACHE, "config": config}


def tuning_part(encoder: str, tuning: str) -> Tuning:
    """The encoder's tuning part of a grid tuning (frozen and co: Frozen; lora, lora-cold: LoRA r8; full)."""
    tune = TUNED.get(tuning, "frozen")
    if tune == "frozen":
        return Frozen()
    trained = dict(lr=SEARCH.get("encoder_lr", ENCODER_LR[tune]),
                   grad_items=SEARCH.get("grad_items", GRAD_ITEMS.get(encoder, 128)),
                   refresh_every=SEARCH.get("refresh_every", 0))  # the grid: refreshed before each validation
    return LoRA(rank=8, alpha=16.0, **trained) if tune == "lora" else FullTune(**trained)


def encoder_options(code: str, encoder: str, tuning: str, seed: int) -> Encoder:
    model = str(MODELS / f"co-{code}-{encoder}-{seed}") if tuning == "co" else encoder
    return Encoder(model, tuning=tuning_part(encoder, tuning), max_length=MAX_LENGTH[code], batch_size=32)


def cell_name(code: str, encoder: str, tuning: str, seed: int) -> str:
    return f"{code}-{encoder}-{tuning}-{seed}"


def stage1_dir(code: str, encoder: str, seed: int) -> Path:
    return MODELS / f"stage1-{code}-{encoder}-{seed}"


def stage2(config: dict[str, Any], **fixed: Any) -> dict[str, Any]:
    """The TrainConfig of a tuned stage from its frozen stage's: STAGE2, heads at a quarter of the rate."""
    return {**config, **STAGE2, "lr": config["lr"] / 4, **fixed, **SMOKE}


def ranker(code: str, encoder: str, tuning: str, seed: int) -> LMRanker:
    """The LMRanker of a cell, unfitted (a tuned one trains from its frozen model: :func:`build`)."""
    params = base_config(code, seed)
    if tuning in TUNED:
        fixed: dict[str, Any] = {}
        if tuning == "lora-cold":
            if code != "P4" or not COLD_TUNE["chosen"]:
                raise SystemExit("lora-cold runs on P4 once search-cold-tune has chosen its epochs (COLD_TUNE)")
            fixed = {"epochs": COLD_TUNE["chosen"]}
        params["config"] = stage2(params["config"], **fixed)
    return LMRanker(encoder=encoder_options(code, encoder, tuning, seed), **params)


def build(code: str, encoder: str, tuning: str, seed: int) -> tuple[LMRanker, Recommender | None]:
    """(model, the frozen model it starts from or None)."""
    start = Recommender.load(stage1_dir(code, encoder, seed)) if tuning in TUNED else None
    return ranker(code, encoder, tuning, seed), start


def blend_model(code: str, lm: Recommender) -> Blend:
    """The frozen ranker ``lm`` and EASE as one Blend (weights chosen on validation, step 0.05)."""
    return Blend(members=[lm, EASE(lam=EASE_LAM[code])], step=0.05)


def baseline_model(code: str, name: str) -> Recommender:
    """EASE (its validation-chosen λ, benchmarks/baselines.py) or text-kNN over a frozen encoder."""
    if name == "ease":
        return EASE(lam=EASE_LAM[code])
    return TextKNN(encoder=Encoder(TEXT_KNN[name], max_length=MAX_LENGTH[code]), cache_dir=CACHE,
                   device=DEVICE["device"])


def evaluate(model: Recommender, split: Any, code: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Validation and test NDCG@10 (P4: cold items among cold items and among all), per-user test values."""
    out = {"valid_ndcg@10": Evaluator(split, ["ndcg@10"], stage="valid").evaluate(model).summary()["ndcg@10"]}
    per_user: dict[str, np.ndarray] = {}
    stages = [("cold", "cold"), ("all", "all")] if code == "P4" else [("test", "all")]
    for label, candidates in stages:
        res = Evaluator(split, ["ndcg@10", "recall@10"], candidates=candidates).evaluate(model)
        out.update({f"{label}_{k}": v for k, v in res.summary().items()})
        per_user[f"{label}.users"], per_user[f"{label}.ndcg@10"] = res.users, res.per_user["ndcg@10"]
    return out, per_user


def run_cell(code: str, encoder: str, tuning: str, seed: int) -> dict[str, Any]:
    """Train and evaluate one cell in this process; returns its record."""
    split = get_protocol(code, seed=seed)
    start = time.perf_counter()
    co = None
    if tuning == "co":
        co_dir = MODELS / f"co-{code}-{encoder}-{seed}"
        if not co_dir.exists():
            side = TextSide(Encoder(encoder), None)  # the item texts as the ranker renders them
            side.resolve(split.train, "finetune")
            stage = CoInteraction(epochs=1, batch_size=64, lr=1e-3, max_pairs=256 if SMOKE else 20000, seed=seed)
            pretune(Encoder(encoder, tuning=LoRA(rank=8), max_length=MAX_LENGTH[code]), split.train,
                    side.item_texts(), stage, co_dir, device=DEVICE["device"], progress=False)
        co = json.loads((co_dir / "lmrec-pretune.json").read_text())
    model, stage1 = build(code, encoder, tuning, seed)
    fit_start = time.perf_counter()
    # lora-cold trains its chosen epochs: the warm validation does not pick its epoch
    model.fit(split.train, None if tuning == "lora-cold" else split.valid, init_from=stage1)
    fit_seconds = time.perf_counter() - fit_start
    if tuning == "frozen":
        model.save(stage1_dir(code, encoder, seed))
    scores, per_user = evaluate(model, split, code)
    record = {"protocol": code, "encoder": encoder, "tuning": tuning, "seed": seed, **scores,
              **training_cost(model), "start_valid": model.start_valid_, "fit_seconds": round(fit_seconds, 1),
              "cell_seconds": round(time.perf_counter() - start, 1),
              "parameters": parameters(model),
              "refresh": model.text_.stats.get("refresh"), "encode": model.text_.stats.get("items"),
              "pretune": co, "peak_rss_mb": peak_rss_mb(),
              "params": model.get_params()}
    return {**record, **{"per_user": per_user}}


def blend_cell(code: str, encoder: str, seed: int) -> dict[str, Any]:
    """The frozen ranker of the seed (its stage-1 model; trained here with the frozen configuration when
    missing) and EASE, blended by per-user z-scores with the weight chosen on validation (step 0.05)."""
    split = get_protocol(code, seed=seed)
    start = time.perf_counter()
    refit = not stage1_dir(code, encoder, seed).exists()
    if refit:
        lm = build(code, encoder, "frozen", seed)[0].fit(split.train, split.valid)
        lm.save(stage1_dir(code, encoder, seed))
    else:
        lm = Recommender.load(stage1_dir(code, encoder, seed))
    fit_start = time.perf_counter()
    model = blend_model(code, lm).fit(split.train, split.valid)
    fit_seconds = time.perf_counter() - fit_start
    scores, per_user = evaluate(model, split, code)
    return {"protocol": code, "encoder": encoder, "tuning": BLEND, "seed": seed, **scores,
            "weights": [float(w) for w in model.weights_], "selection": model.selection_, "ranker_refit": refit,
            "fit_seconds": round(fit_seconds, 1), "cell_seconds": round(time.perf_counter() - start, 1),
            "parameters": parameters(lm), "per_user": per_user,
            "peak_rss_mb": peak_rss_mb()}


def baseline_cell(code: str, name: str, seed: int) -> dict[str, Any]:
    """EASE (its validation-chosen λ, benchmarks/baselines.py) and text-kNN over an encoder beside the grid."""
    split = get_protocol(code, seed=seed)
    model = baseline_model(code, name)
    start = time.perf_counter()
    model.fit(split.train, split.valid)
    scores, per_user = evaluate(model, split, code)
    return {"protocol": code, "encoder": name, "tuning": "-", "seed": seed, **scores,
            "fit_seconds": round(time.perf_counter() - start, 1), "per_user": per_user,
            "peak_rss_mb": peak_rss_mb()}


def parameters(model: LMRanker) -> dict[str, Any]:
    """Trainable parameters: the heads (towers, projection, IDs) plus a tuned encoder's trained weights."""
    heads = count_parameters(model.module_)
    if model.tuned_ is None:
        return heads
    encoder = count_parameters(model.tuned_)
    both = {k: heads[k] + encoder[k] for k in ("trainable", "total")}
    return {**both, "share": round(both["trainable"] / both["total"], 6), "encoder": encoder}


def cold_candidate(name: str, seed: int = 2026) -> dict[str, Any]:
    """One P4 candidate trained and ranked on the cold validation (pseudo-cold items of P4's train)."""
    SEARCH["cold"] = name
    split = cold_validation(get_protocol("P4", seed=seed), 0.2, seed=seed)
    model = TextKNN(encoder=Encoder("minilm", max_length=MAX_LENGTH["P4"]), cache_dir=CACHE) if name == "text-knn" \
        else LMRanker(encoder=encoder_options("P4", "minilm", "frozen", seed), **base_config("P4", seed))
    start = time.perf_counter()
    model.fit(split.train, split.valid)
    out: dict[str, Any] = {"candidate": name, "seed": seed, "fit_seconds": round(time.perf_counter() - start, 1),
                           "pseudo_cold_items": int(len(split.cold_items)), "rows": int(len(split.test))}
    for label, candidates in (("cold", "cold"), ("all", "all")):
        res = Evaluator(split, ["ndcg@10", "recall@10"], candidates=candidates).evaluate(model).summary()
        out.update({f"{label}_{k}": v for k, v in res.items()})
    if name != "text-knn":
        out.update(epochs=len(model.training_log_), best_epoch=model.best_epoch_)
    return out


def cold_tune_search(seed: int = 2026) -> dict[str, Any]:
    """Stage 2 (MiniLM LoRA) of P4 with its epochs read on the cold validation: the chosen P4 configuration
    trained frozen on P4's training data less the pseudo-cold items (early stopping on the warm valid, as the
    frozen cells), then tuned for COLD_TUNE["epochs"] epochs with the pseudo-cold items' rows as validation
    (NDCG@10 among all items: a cold item must rise among warm ones), the start competing. The real cold
    items and test set are not read; the best epoch count is what the ``lora-cold`` cells train for."""
    split = cold_validation(get_protocol("P4", seed=seed), 0.2, seed=seed)
    stage1 = LMRanker(encoder=encoder_options("P4", "minilm", "frozen", seed), **base_config("P4", seed))
    stage1.fit(split.train, split.valid)
    params = base_config("P4", seed)
    params["config"] = stage2(params["config"], epochs=COLD_TUNE["epochs"], patience=COLD_TUNE["epochs"])
    tuned = LMRanker(encoder=encoder_options("P4", "minilm", "lora", seed), **params)
    start = time.perf_counter()
    tuned.fit(split.train, split.test, init_from=stage1)
    out: dict[str, Any] = {"seed": seed, "fit_seconds": round(time.perf_counter() - start, 1),
                           "pseudo_cold_items": int(len(split.cold_items)), "rows": int(len(split.test)),
                           "start_valid": tuned.start_valid_, "best_epoch": tuned.best_epoch_,
                           "epochs": [{k: r[k] for k in ("epoch", "valid_ndcg@10", "train_cpu_seconds") if k in r}
                                      for r in tuned.training_log_]}
    for name, model in (("start", stage1), ("tuned", tuned)):
        for label, candidates in (("cold", "cold"), ("all", "all")):
            res = Evaluator(split, ["ndcg@10"], candidates=candidates).evaluate(model).summary()
            out[f"{name}_{label}_ndcg@10"] = res["ndcg@10"]
    return out


def store() -> CellStore:
    return CellStore(OUT / "cells")


def search_setting() -> dict[str, Any]:
    """The validation-only search setting of this run ({} for the grid): part of each cell's parameters."""
    return {k: v for k, v in SEARCH.items() if k in ("encoder_lr", "refresh_every", "grad_items")}


def model_cell(name: str) -> tuple[str, str]:
    """(encoder, tuning) of a grid model: "ENCODER:TUNING", or a baseline (tuning "-")."""
    if name in BASELINES:
        return name, "-"
    encoder, _, tuning = name.partition(":")
    if tuning not in (*TUNINGS, BLEND):
        raise SystemExit(f"{SPEC}: model {name!r} must be ENCODER:TUNING (tunings {', '.join((*TUNINGS, BLEND))}) "
                         f"or a baseline ({', '.join(BASELINES)})")
    return encoder, tuning


def _params(spec: StudySpec, grid: GridSection, code: str, name: str, seed: int) -> dict[str, Any]:
    encoder, tuning = model_cell(name)
    return {"protocol": code, "encoder": encoder, "tuning": tuning, "seed": seed, "search": search_setting()}


def _compute(ctx: Any, grid: GridSection, code: str, name: str, seed: int, key: str) -> dict[str, Any]:
    encoder, tuning = model_cell(name)
    cell = baseline_cell if tuning == "-" else blend_cell if tuning == BLEND else None
    record = cell(code, encoder, seed) if cell else run_cell(code, encoder, tuning, seed)
    per_user = record.pop("per_user")
    return {**record, **run_info(), "arrays": {k: np.asarray(v) for k, v in per_user.items()}}


RECIPE = Recipe(_params, _compute)  # the spec's recipe "finetune"


def search_cell(section: str, params: dict[str, Any], make: Callable[[], dict[str, Any]]) -> Cell:
    """One validation-only search record (``make()`` plus the run's command, machine, commit)."""
    return Cell(section, params, lambda ctx, key: {**make(), **run_info()})


def load_cells(section: str = "finetune", search: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The stored records of ``section`` (for "finetune": of the search setting ``search``, {} the grid;
    None every setting), with their per-user values under "per_user" and the parameters under "cell"."""
    out = []
    for cell in store():
        if cell.section != section or (search is not None and cell.params.get("search") != search):
            continue
        out.append({**cell.result, "per_user": cell.arrays, "cell": cell.params, "code": cell.code})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["run", "report", "search-cold", "search-cold-tune"])
    parser.add_argument("--candidates", nargs="+", default=["text-knn", *COLD_CANDIDATES],
                        help="search-cold: the P4 candidates to train on the cold validation")
    parser.add_argument("--grids", nargs="+", help="run: only these [grid.NAME] sections of the spec (default all)")
    parser.add_argument("--spec", default=str(SPEC), help="the grid (a study spec whose grids use recipe finetune)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[2026], help="search-cold-tune: its seeds")
    parser.add_argument("--recompute-stale", action="store_true",
                        help="recompute stored cells that another code version computed (default: keep them)")
    parser.add_argument("--smoke", action="store_true", help="one epoch per stage into /tmp/finetune-smoke (a check "
                                                             "of the script, not a result)")
    parser.add_argument("--device", default="cpu", help='where cells train and encode ("cuda" on a GPU machine); '
                                                         "each result file names the machine")
    searched = parser.add_mutually_exclusive_group()  # a search row changes one setting of the tuned rows
    searched.add_argument("--encoder-lr", type=float, help="search: another encoder learning rate for the tuned rows; "
                                                           "a search row (validation only)")
    searched.add_argument("--refresh-every", type=int, help="search: re-encode the catalogue table every this many "
                                                            "steps (the grid: before each validation); results go "
                                                            "to results/finetune/search (validation only)")
    searched.add_argument("--grad-items", type=int, help="search: items encoded with gradients per step (the grid: "
                                                         "128, SmolLM2 32); a search row "
                                                         "(validation only)")
    args = parser.parse_args(argv)
    global OUT, MODELS
    DEVICE["device"] = args.device
    for name in ("encoder_lr", "refresh_every", "grad_items"):  # a search row: part of its cells' parameters
        if getattr(args, name) is not None:
            SEARCH[name] = getattr(args, name)
    if args.smoke:
        OUT, MODELS = Path("/tmp/finetune-smoke/results"), Path("/tmp/finetune-smoke/models")
        SMOKE.update(epochs=1)
    if args.action == "report":
        from benchmarks.finetune_report import write_report

        searched: dict[str, list[dict[str, Any]]] = {}
        for c in load_cells(search=None):
            if c["cell"]["search"] and "superseded" not in c["cell"]["search"]:
                (kind, value), = c["cell"]["search"].items()
                searched.setdefault(f"{kind.replace('_', '-')}-{value:g}", []).append(c)
        write_report(load_cells(search={}), {"p4_choice": P4_CHOICE, "cold_tune": COLD_TUNE}, searched,
                     load_cells("finetune-search-cold"), load_cells("finetune-search-cold-tune"))
        return 0
    if args.action == "search-cold":
        planned = [search_cell("finetune-search-cold", {"candidate": name, "seed": 2026}, partial(cold_candidate, name))
                   for name in args.candidates]
    elif args.action == "search-cold-tune":
        planned = [search_cell("finetune-search-cold-tune", {"seed": seed}, partial(cold_tune_search, seed))
                   for seed in args.seeds]
    else:
        spec = load_spec(args.spec)
        unknown = sorted(set(args.grids or []) - set(spec.grid))
        if unknown:
            raise SystemExit(f"{args.spec} has no grid(s) {unknown}; its grids: {', '.join(spec.grid)}")
        spec.grid = {k: g for k, g in spec.grid.items() if not args.grids or k in args.grids}
        done = run_study(spec, OUT, keep_stale=False if args.recompute_stale else None,
                         recipes={"finetune": RECIPE}, progress=True)
        print(f"{done.computed} cells computed, {done.reused} reused ({done.stale} by another code version)",
              flush=True)
        return 0
    done = run_cells(planned, store(), keep_stale=not args.recompute_stale, isolate=True, desc="finetune cells")
    print(f"{done.computed} cells computed, {done.reused} reused ({done.stale} by another code version)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
