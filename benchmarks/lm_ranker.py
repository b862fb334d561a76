"""Which pairwise loss and which user tower for the language-model ranker?

LMRanker over frozen MiniLM item texts (ID-free, no graph, d 64, cosine at τ 0.07), trained with
each loss (BPR and the hinge max(0, 1 - (s_pos - s_neg)) on 8 uniform negatives, the sampled
softmax on 64) and each user tower (mean, attention, causal sequence) on P2 and P3. Every run is
bounded by epochs (60, early stopping with patience 3 on validation NDCG@10); the table shows
validation only and test NDCG@10 is read once, for each protocol's validation-best cell.

    LMREC_DATA_DIR=../shared/datasets HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.lm_ranker

Each finished cell is kept in ``benchmarks/results/lm_ranker/<protocol>-<loss>-<tower>.json`` (a
rerun resumes; ``--redo`` trains again) and ``benchmarks/results/lm_ranker.md`` is rebuilt from
them. The tuned configurations (graph, IDs, wider models, fine-tuning) are in finetune.md.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from lmrec.study.provenance import RESULTS, header, peak_rss_mb, run_info
from lmrec.study.cells import training_cost

from lmrec.data import get_protocol
from lmrec.evaluation import Evaluator
from lmrec.losses import Hinge
from lmrec.models import LMRanker, Recommender
from lmrec.models.lm import USER_TOWERS, Cosine, ItemTower
from lmrec.storage.artifacts import atomic_write_text
from lmrec.training.negatives import Uniform

from benchmarks.pages import write as write_page

OUT = RESULTS / "lm_ranker"
MODELS = Path.home() / ".cache" / "lmrec" / "lm_ranker"  # each cell's fitted model, for the chosen cell's test
CACHE = str(Path.home() / ".cache" / "lmrec" / "embeddings")
LOSSES = ("bpr", "hinge", "softmax")
NEGATIVES = {"bpr": 8, "hinge": 8, "softmax": 64}
TRAIN = dict(epochs=60, batch_size=1024, lr=1e-3, patience=3, progress=False)
PROTOCOLS = {"P2": "P2 Scientific leave-one-out", "P3": "P3 ML-100K temporal"}


def model(loss: str, tower: str, seed: int) -> LMRanker:
    return LMRanker(items=ItemTower(dim=64), user=USER_TOWERS[tower](), scorer=Cosine(0.07),
                    loss=Hinge(1.0) if loss == "hinge" else loss, negatives=Uniform(NEGATIVES[loss]),
                    cache_dir=CACHE, config={**TRAIN, "seed": seed})


def model_dir(code: str, loss: str, tower: str, seed: int) -> Path:
    return MODELS / f"{code}-{loss}-{tower}-{seed}"


def run_cell(code: str, loss: str, tower: str, seed: int) -> dict[str, Any]:
    split = get_protocol(code, seed=seed)
    m = model(loss, tower, seed)
    start = time.perf_counter()
    m.fit(split.train, split.valid)
    fit_seconds = round(time.perf_counter() - start, 1)
    m.save(model_dir(code, loss, tower, seed))
    return {"protocol": code, "loss": loss, "tower": tower, "seed": seed,
            "valid_ndcg@10": Evaluator(split, ["ndcg@10"], stage="valid").evaluate(m).summary()["ndcg@10"],
            "fit_seconds": fit_seconds, **training_cost(m), "peak_rss_mb": peak_rss_mb(), "params": m.get_params(),
            **run_info()}


def test_chosen(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """The validation-best cell's model (trained again with its seed where it was not kept) on test,
    read once."""
    best = max(cells, key=lambda c: c["valid_ndcg@10"])
    split = get_protocol(best["protocol"], seed=best["seed"])
    kept = model_dir(best["protocol"], best["loss"], best["tower"], best["seed"])
    m = Recommender.load(kept) if kept.exists() else \
        model(best["loss"], best["tower"], best["seed"]).fit(split.train, split.valid)
    res = Evaluator(split, ["ndcg@10", "recall@10"]).evaluate(m).summary()
    return {"protocol": best["protocol"], "loss": best["loss"], "tower": best["tower"], "seed": best["seed"],
            "valid_ndcg@10": Evaluator(split, ["ndcg@10"], stage="valid").evaluate(m).summary()["ndcg@10"],
            **{f"test_{k}": v for k, v in res.items()}, **run_info()}


def report(cells: list[dict[str, Any]], tests: dict[str, dict[str, Any]]) -> str:
    lines = ["# Which loss and which user tower for the language-model ranker?", "",
             "LMRanker over frozen all-MiniLM-L6-v2 item texts, ID-free, no graph, d 64, cosine at τ 0.07, batch "
             "1024, lr 1e-3; BPR and hinge (margin 1) on 8 uniform negatives, sampled softmax on 64. Bounded by "
             f"epochs ({TRAIN['epochs']}, early stopping with patience {TRAIN['patience']}); seed "
             f"{', '.join(sorted({str(c['seed']) for c in cells})) or '—'}. The grid "
             "shows validation NDCG@10 only; test is read once, for the validation-best cell of each protocol.", ""]
    for code, title in PROTOCOLS.items():
        mine = {(c["loss"], c["tower"]): c for c in cells if c["protocol"] == code}
        if not mine:
            continue
        towers = list(USER_TOWERS)
        lines += [f"## {title}: validation NDCG@10 (epochs, best)", "",
                  "| loss | " + " | ".join(towers) + " |", "|---|" + "---|" * len(towers)]
        for loss in LOSSES:
            row = [f"{c['valid_ndcg@10']:.4f} ({c['epochs']}, {c['best_epoch']})" if (c := mine.get((loss, t)))
                   else "not run" for t in towers]
            lines.append(f"| {loss} | " + " | ".join(row) + " |")
        t = tests.get(code)
        if t:
            lines += ["", f"Chosen on validation: **{t['loss']} loss, {t['tower']} tower**; test NDCG@10 "
                          f"**{t['test_ndcg@10']:.4f}** (Recall@10 {t['test_recall@10']:.4f}; validation "
                          f"{t['valid_ndcg@10']:.4f})."]
        lines.append("")
    lines += ["## Appendix: runs", "",
              "| protocol | loss | tower | s / epoch (wall / CPU) | fit s | peak MB | date | commit |",
              "|---|---|---|---|---|---|---|---|"]
    for c in cells:
        lines.append(f"| {c['protocol']} | {c['loss']} | {c['tower']} | {c['seconds_per_epoch']:.1f} / "
                     f"{c['cpu_seconds_per_epoch']:.1f} | {c['fit_seconds']:.0f} | {c['peak_rss_mb']:.0f} | "
                     f"{c['date']} | `{c['commit'][:12]}` |")
    last = max([*cells, *tests.values()], key=lambda c: c["date"], default=None)
    lines += ["", "Latest run:", "", header(last)] if last else []
    return "\n".join(lines)


def load(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--redo", action="store_true", help="train cells that already have a result")
    parser.add_argument("--report-only", action="store_true", help="rebuild lm_ranker.md from the cells")
    args = parser.parse_args(argv)
    (OUT / "test").mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for code in args.protocols:
            for loss in LOSSES:
                for tower in USER_TOWERS:
                    path = OUT / f"{code}-{loss}-{tower}.json"
                    if path.exists() and not args.redo:
                        continue
                    print(f"== {code} {loss} {tower}", flush=True)
                    atomic_write_text(path, json.dumps(run_cell(code, loss, tower, args.seed), indent=2) + "\n")
            path = OUT / "test" / f"{code}.json"
            if not path.exists() or args.redo:
                cells = [c for c in load(OUT) if c["protocol"] == code]
                atomic_write_text(path, json.dumps(test_chosen(cells), indent=2) + "\n")
    tests = {t["protocol"]: t for t in load(OUT / "test")}
    atomic_write_text(RESULTS / "lm_ranker.md", report(load(OUT), tests))
    write_page("lm_ranker")  # its first screen on top (benchmarks.pages)
    print((RESULTS / "lm_ranker.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
