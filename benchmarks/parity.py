"""Does the parts-based LMRanker keep the quality of the flag-based one? P2 and P3 chosen configurations.

Re-trains, with the current code, the configurations chosen on validation before the redesign
(benchmarks/results/lm_ranker.md at commit b8ba293: P2 comparison, P3 ablation) for seeds 2026-2028, bounded by
epochs (no wall-clock cap), and sets test NDCG@10 beside the committed numbers.

    LMREC_DATA_DIR=../shared/datasets HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/parity.py
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, header, run_info  # noqa: E402

from lmrec.data import get_protocol  # noqa: E402
from lmrec.evaluation import Evaluator  # noqa: E402
from lmrec.evaluation.stats import mean_interval  # noqa: E402
from lmrec.models import LMRanker  # noqa: E402
from lmrec.models.lm import Cosine, ItemTower, SequenceUser  # noqa: E402
from lmrec.training import TrainConfig  # noqa: E402

# the committed numbers (benchmarks/results/lm_ranker.md before the redesign, as of commit b8ba293): test NDCG@10
COMMITTED = {"P2": ("3-seed mean 0.0908 ± 0.0005 (4.25-minute cap)", 0.0908),
             "P3": ("seed 2026: 0.1439 (ablation row, 8-minute cap)", 0.1439)}


def chosen(code: str, seed: int) -> LMRanker:
    if code == "P2":  # sequence tower, 2 graph layers, ID-free, d 128, τ 0.05, weight decay 3, plateau halving
        return LMRanker(items=ItemTower(dim=128, graph_layers=2), user=SequenceUser(), scorer=Cosine(0.05),
                        loss="softmax", config=TrainConfig(epochs=60, batch_size=1024, lr=1e-3, weight_decay=3.0,
                                                           sampler="unseen", patience=4, plateau_decay=0.5,
                                                           seed=seed, progress=False))
    # P3: sequence tower, 2 graph layers, item and user IDs, d 64, τ 0.07, 64 uniform negatives
    return LMRanker(items=ItemTower(dim=64, ids=True, graph_layers=2), user=SequenceUser(ids=True),
                    scorer=Cosine(0.07), loss="softmax",
                    config=TrainConfig(epochs=60, batch_size=1024, lr=1e-3, n_negatives=64, patience=3,
                                       seed=seed, progress=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocols", nargs="+", default=["P2", "P3"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2026, 2027, 2028])
    args = parser.parse_args()
    info = run_info()
    partial = RESULTS / "parity.partial.json"  # rows done so far: an interrupted run resumes
    done = RESULTS / "parity.json"  # a finished table's rows count as done too
    rows = json.loads(partial.read_text()) if partial.exists() else \
        json.loads(done.read_text())["rows"] if done.exists() else []
    for code in args.protocols:
        for seed in args.seeds:
            if any(r["protocol"] == code and r["seed"] == seed for r in rows):
                continue
            split = get_protocol(code, seed=seed)
            start = time.perf_counter()
            model = chosen(code, seed).fit(split.train, split.valid)
            rows.append({"protocol": code, "seed": seed, "epochs": len(model.training_log_),
                         "best_epoch": model.best_epoch_, "fit_seconds": round(time.perf_counter() - start, 1),
                         "valid": Evaluator(split, ["ndcg@10"], stage="valid").evaluate(model).summary()["ndcg@10"],
                         "test": Evaluator(split, ["ndcg@10"]).evaluate(model).summary()["ndcg@10"]})
            print(json.dumps(rows[-1]), flush=True)
            partial.write_text(json.dumps(rows, indent=2) + "\n")
    rows = [r for r in rows if r["protocol"] in args.protocols and r["seed"] in args.seeds]
    (RESULTS / "parity.json").write_text(json.dumps({**info, "rows": rows}, indent=2) + "\n")
    partial.unlink(missing_ok=True)
    lines = ["# Parity: the parts-based LMRanker against the committed flag-based numbers", "", header(info),
             "| protocol | committed test NDCG@10 | now: test NDCG@10 per seed | now: mean ± 95% interval | "
             "epochs (best) |", "|---|---|---|---|---|"]
    for code in args.protocols:
        mine = [r for r in rows if r["protocol"] == code]
        mean, half = mean_interval(np.array([r["test"] for r in mine]))
        tests = ", ".join(f"{r['test']:.4f}" for r in mine)
        epochs = ", ".join(f"{r['epochs']} ({r['best_epoch']})" for r in mine)
        lines.append(f"| {code} | {COMMITTED[code][0]} | {tests} | {mean:.4f} ± {half:.4f} | {epochs} |")
    (RESULTS / "parity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
