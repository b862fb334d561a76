"""Before and after fine-tuning: encoder x tuning on P2, P3 and P4-cold, seeds 2026-2028.

Rows: an encoder (MiniLM 22M, MPNet 110M, SmolLM2 135M decoder) and a tuning mode —
``frozen`` (embeddings computed once), ``lora`` and ``full`` (the encoder trained with the ranking
loss, starting from the frozen model of the same seed: two stages), ``co`` (co-interaction
pre-fine-tuning of the encoder on the training histories, then used frozen). Beside them,
``ease-blend`` (``--tunings ease-blend``): the frozen ranker and EASE as one ``Blend`` (per-user
z-scores, the weight chosen on validation), the hybrid of text and collaborative scores. Each cell
(protocol, encoder, tuning, seed) runs in its own process (its peak memory is its own) and is
kept in ``benchmarks/results/finetune/`` (JSON + per-user values), so the grid resumes where it
stopped and grows cell by cell; ``report`` rebuilds ``benchmarks/results/finetune.md``.

    LMREC_DATA_DIR=../shared/datasets HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/finetune.py run \\
        --protocols P2 P4 P3 --encoders minilm --tunings frozen lora full co --seeds 2026 2027 2028
    .venv/bin/python benchmarks/finetune.py report

On a GPU machine add ``--device cuda`` (training, encoding and the catalogue refreshes run there).
``search-cold`` and ``search-cold-tune`` choose P4's configuration and its tuned epochs on a cold
validation; ``--encoder-lr``, ``--refresh-every`` and ``--grad-items`` write validation-only search
rows.

Configurations are bounded by epochs (no wall-clock cap) and were fixed on validation
(``search``) before any test figure was read; see CONFIG below.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, peak_rss_mb, run_info, training_cost  # noqa: E402

from lmrec.data import cold_validation, get_protocol  # noqa: E402
from lmrec.evaluation import Evaluator  # noqa: E402
from lmrec.models import EASE, Blend, LMRanker, Recommender, TextKNN  # noqa: E402
from lmrec.models.lm import Cosine, ItemTower, MeanUser, SequenceUser  # noqa: E402
from lmrec.models.text_side import TextSide  # noqa: E402
from lmrec.storage.artifacts import atomic_write_text, load_arrays, save_arrays  # noqa: E402
from lmrec.text.options import Encoder, LoRA  # noqa: E402
from lmrec.text.pretune import CoInteraction, pretune  # noqa: E402
from lmrec.text.tuning import count_parameters  # noqa: E402

OUT = RESULTS / "finetune"
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
TUNED = {"lora": "lora", "lora-cold": "lora", "full": "full"}  # tunings that train the encoder -> Encoder.tune
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
        cfg = dict(epochs=60, batch_size=1024, lr=1e-3, n_negatives=64, patience=3, seed=seed)
        parts = dict(items=ItemTower(dim=64, ids=True, graph_layers=2), user=SequenceUser(ids=True),
                     scorer=Cosine(0.07))
    else:  # P2 (and P4 without the graph and with cold items out of the negatives)
        cfg = dict(epochs=60, batch_size=1024, lr=1e-3, weight_decay=3.0, sampler="unseen", patience=4,
                   plateau_decay=0.5, seed=seed)
        graph = 0 if code == "P4" else 2
        parts = dict(items=ItemTower(dim=128, graph_layers=graph), user=SequenceUser(), scorer=Cosine(0.05))
        if code == "P4":
            cfg["negative_pool"] = "train-items"
            parts.update(COLD_CANDIDATES[SEARCH.get("cold", P4_CHOICE)])
    config = {**cfg, "progress": False, **DEVICE, **train, **SMOKE}
    return {**parts, "loss": "softmax", "cache_dir": CACHE, "config": config}


def encoder_options(code: str, encoder: str, tuning: str, seed: int) -> Encoder:
    model = str(MODELS / f"co-{code}-{encoder}-{seed}") if tuning == "co" else encoder
    tune = TUNED.get(tuning, "frozen")
    return Encoder(model, tune=tune, max_length=MAX_LENGTH[code], lora=LoRA(rank=8, alpha=16.0),
                   lr=SEARCH.get("encoder_lr", ENCODER_LR.get(tune)),
                   grad_items=SEARCH.get("grad_items", GRAD_ITEMS.get(encoder, 128)),
                   refresh_every=SEARCH.get("refresh_every", 0), batch_size=32)


def cell_name(code: str, encoder: str, tuning: str, seed: int) -> str:
    return f"{code}-{encoder}-{tuning}-{seed}"


def stage1_dir(code: str, encoder: str, seed: int) -> Path:
    return MODELS / f"stage1-{code}-{encoder}-{seed}"


def stage2(config: dict[str, Any], **fixed: Any) -> dict[str, Any]:
    """The TrainConfig of a tuned stage from its frozen stage's: STAGE2, heads at a quarter of the rate."""
    return {**config, **STAGE2, "lr": config["lr"] / 4, **fixed, **SMOKE}


def build(code: str, encoder: str, tuning: str, seed: int) -> tuple[LMRanker, Recommender | None]:
    """(model, the frozen model it starts from or None)."""
    params = base_config(code, seed)
    if tuning in TUNED:
        fixed: dict[str, Any] = {}
        if tuning == "lora-cold":
            if code != "P4" or not COLD_TUNE["chosen"]:
                raise SystemExit("lora-cold runs on P4 once search-cold-tune has chosen its epochs (COLD_TUNE)")
            fixed = {"epochs": COLD_TUNE["chosen"]}
        params["config"] = stage2(params["config"], **fixed)
        start = Recommender.load(stage1_dir(code, encoder, seed))
    else:
        start = None
    return LMRanker(encoder=encoder_options(code, encoder, tuning, seed), **params), start


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
            pretune(Encoder(encoder, tune="lora", max_length=MAX_LENGTH[code], lora=LoRA(rank=8)), split.train,
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
    model = Blend(members=[lm, EASE(lam=EASE_LAM[code])], step=0.05).fit(split.train, split.valid)
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
    model = EASE(lam=EASE_LAM[code]) if name == "ease" else TextKNN(
        encoder=Encoder(TEXT_KNN[name], max_length=MAX_LENGTH[code]), cache_dir=CACHE, device=DEVICE["device"])
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


def save_search(path: Path, make: Callable[[], dict[str, Any]], redo: bool) -> None:
    """One validation-only search record (``make()`` plus the run's command, machine, commit), unless kept."""
    if path.exists() and not redo:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({**make(), **run_info()}, indent=2, default=float) + "\n")
    print(path.read_text(), flush=True)


def save_cell(record: dict[str, Any]) -> None:
    per_user = record.pop("per_user")
    name = cell_name(record["protocol"], record["encoder"], record["tuning"], record["seed"])
    OUT.mkdir(parents=True, exist_ok=True)
    save_arrays(OUT / f"{name}.per-user.safetensors", {k: np.asarray(v) for k, v in per_user.items()})
    atomic_write_text(OUT / f"{name}.json", json.dumps({**record, **run_info()}, indent=2, default=float) + "\n")


def load_cells(folder: Path = OUT) -> list[dict[str, Any]]:
    cells = []
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        record["per_user"] = load_arrays(path.with_name(path.stem + ".per-user.safetensors"))
        cells.append(record)
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["run", "cell", "report", "search-cold", "search-cold-tune"])
    parser.add_argument("--candidates", nargs="+", default=["text-knn", *COLD_CANDIDATES],
                        help="search-cold: the P4 candidates to train on the cold validation")
    parser.add_argument("--protocols", nargs="+", default=["P2", "P4", "P3"])
    parser.add_argument("--encoders", nargs="+", default=["minilm"])
    parser.add_argument("--tunings", nargs="+", default=list(TUNINGS),
                        help=f"of {', '.join(TUNINGS)}; or {BLEND}: the frozen ranker blended with EASE")
    parser.add_argument("--seeds", nargs="+", type=int, default=[2026, 2027, 2028])
    parser.add_argument("--baselines", nargs="*", default=["ease", "text-knn"], choices=["ease", *TEXT_KNN])
    parser.add_argument("--redo", action="store_true", help="run cells that already have a result")
    parser.add_argument("--smoke", action="store_true", help="one epoch per stage into /tmp/finetune-smoke (a check "
                                                             "of the script, not a result)")
    parser.add_argument("--device", default="cpu", help='where cells train and encode ("cuda" on a GPU machine); '
                                                         "each result file names the machine")
    searched = parser.add_mutually_exclusive_group()  # a search row changes one setting of the tuned rows
    searched.add_argument("--encoder-lr", type=float, help="search: another encoder learning rate for the tuned rows; "
                                                           "results go to results/finetune/search (validation only)")
    searched.add_argument("--refresh-every", type=int, help="search: re-encode the catalogue table every this many "
                                                            "steps (the grid: before each validation); results go "
                                                            "to results/finetune/search (validation only)")
    searched.add_argument("--grad-items", type=int, help="search: items encoded with gradients per step (the grid: "
                                                         "128, SmolLM2 32); results go to results/finetune/search "
                                                         "(validation only)")
    args = parser.parse_args(argv)
    global OUT, MODELS
    DEVICE["device"] = args.device
    if args.encoder_lr is not None:
        SEARCH["encoder_lr"] = args.encoder_lr
        OUT = OUT / "search" / f"encoder-lr-{args.encoder_lr:g}"
    if args.refresh_every is not None:
        SEARCH["refresh_every"] = args.refresh_every
        OUT = OUT / "search" / f"refresh-every-{args.refresh_every}"
    if args.grad_items is not None:
        SEARCH["grad_items"] = args.grad_items
        OUT = OUT / "search" / f"grad-items-{args.grad_items}"
    if args.smoke:
        OUT, MODELS = Path("/tmp/finetune-smoke/results"), Path("/tmp/finetune-smoke/models")
        SMOKE.update(epochs=1)
    if args.action == "report":
        from finetune_report import write_report

        kinds = ("encoder-lr", "refresh-every", "grad-items")  # the search rows' folders
        searched = sorted(p for kind in kinds for p in (OUT / "search").glob(f"{kind}-*"))
        write_report(load_cells(), {"p4_choice": P4_CHOICE, "cold_tune": COLD_TUNE}, {p.name: load_cells(p) for p in searched},
                     [json.loads(p.read_text()) for p in sorted((OUT / "search" / "cold").glob("*.json"))],
                     [json.loads(p.read_text()) for p in sorted((OUT / "search" / "cold-tune").glob("*.json"))])
        return 0
    if args.action == "search-cold":
        for name in args.candidates:
            save_search(OUT / "search" / "cold" / (name.replace(" ", "_").replace(",", "") + ".json"),
                        partial(cold_candidate, name), args.redo)
        return 0
    if args.action == "search-cold-tune":
        for seed in args.seeds:
            save_search(OUT / "search" / "cold-tune" / f"P4-minilm-lora-{seed}.json",
                        partial(cold_tune_search, seed), args.redo)
        return 0
    if args.action == "cell":  # one cell, in this process (what "run" spawns)
        given = {"--protocols": args.protocols, "--encoders": args.encoders, "--tunings": args.tunings,
                 "--seeds": args.seeds}
        several = [flag for flag, values in given.items() if len(values) != 1]
        if several:
            parser.error(f"cell runs one cell: give exactly one value to {', '.join(several)} (the run action takes several)")
        (code,), (encoder,), (tuning,), (seed,) = args.protocols, args.encoders, args.tunings, args.seeds
        cell = baseline_cell if tuning == "-" else blend_cell if tuning == BLEND else None
        save_cell(cell(code, encoder, seed) if cell else run_cell(code, encoder, tuning, seed))
        return 0
    todo = [(c, b, "-", s) for c in args.protocols for b in args.baselines for s in args.seeds[:1]]
    todo += [(c, e, t, s) for s in args.seeds for c in args.protocols for e in args.encoders for t in args.tunings]
    passed = ["--smoke"] if args.smoke else []  # the options a cell needs from this command line
    for flag, value in (("--encoder-lr", args.encoder_lr), ("--refresh-every", args.refresh_every),
                        ("--grad-items", args.grad_items)):
        passed += [flag, str(value)] if value is not None else []
    for code, encoder, tuning, seed in todo:
        if (OUT / f"{cell_name(code, encoder, tuning, seed)}.json").exists() and not args.redo:
            continue
        print(f"== {cell_name(code, encoder, tuning, seed)}", flush=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "cell", "--protocols", code, "--encoders", encoder,
                               "--tunings", tuning, "--seeds", str(seed), "--device", args.device, *passed])
        print(f"   exit {done.returncode} after {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
