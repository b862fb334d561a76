"""LMRanker presets against the baselines, with no argument but the preset's name.

Each run is ``preset:protocol``: ``LMRanker.preset(name)`` trained on the protocol's train split
(validation for early stopping; bounded by epochs) beside most-popular, ItemKNN and EASE with
their validation-chosen settings (benchmarks/results/baselines_P*.json), all measured on test by
:func:`lmrec.compare` (95% interval over users, paired Wilcoxon test per user against the
preset). Finished evaluations are kept in ``~/.cache/lmrec/presets`` so a rerun only trains
what is new; ``presets.md`` and ``presets.json`` are rebuilt from all runs done so far.

    LMREC_DATA_DIR=../shared/datasets HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/presets.py \\
        --runs warm:P1 sequential:P2 sequential:P3
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lmrec.experiments.compare import compare
from lmrec.models import EASE, ItemKNN, LMRanker, MostPopular
from lmrec.storage.artifacts import atomic_write_text

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, baseline_params, run_info  # noqa: E402

CACHE = Path.home() / ".cache" / "lmrec" / "presets"
METRICS = ["ndcg@10", "recall@10"]
BASELINES = ("most-popular", "itemknn", "ease")


def run(preset: str, code: str, seed: int) -> dict[str, Any]:
    """One preset on one protocol beside the baselines; the report as a dict."""
    models = {f"lm-ranker:preset={preset}": LMRanker.preset(preset),
              "most-popular": MostPopular(), "itemknn": ItemKNN(**baseline_params(code, "itemknn")),
              "ease": EASE(**baseline_params(code, "ease"))}
    report = compare(models, code, METRICS, seeds=[seed], progress=False, cache_dir=CACHE)
    return {**report.to_dict(), "preset": preset, "code": code, "seed": seed, **run_info()}


def markdown(runs: list[dict[str, Any]]) -> str:
    lines = ["# LMRanker presets against the baselines (test NDCG@10)", "",
             "Each preset with no other argument; baselines with their validation-chosen settings; ± a 95% "
             "interval over users; Δ and p: the preset minus the best baseline per user (paired Wilcoxon).", "",
             "| preset | protocol | preset NDCG@10 | most-popular | ItemKNN | EASE | Δ vs best baseline (p) | "
             "fit s |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        rows = {row["name"]: row for row in r["rows"]}
        mine = r["rows"][0]

        def cell(row: dict[str, Any]) -> str:
            return f"{row['means']['ndcg@10']:.4f} ± {row['intervals']['ndcg@10']:.4f}"

        best = max(BASELINES, key=lambda b: rows[b]["means"]["ndcg@10"])
        test = rows[best]["test"]
        delta = f"{-test['mean_diff']:+.4f} vs {best} (p {test['p_wilcoxon']:.2g})" if test else "—"
        lines.append(f"| {r['preset']} | {r['code']} `{r['protocol']}` | {cell(mine)} | " +
                     " | ".join(cell(rows[b]) for b in BASELINES) + f" | {delta} | {mine['fit_seconds']:.0f} |")
    lines += ["", "Runs:", ""] + [f"- {r['preset']} on {r['code']}: `{r['command']}`, {r['date']}, commit "
                                  f"`{r['commit']}`, {r['machine']}" for r in runs]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", default=["warm:P1", "sequential:P2", "sequential:P3"],
                        help="preset:protocol pairs (none: rebuild presets.md from presets.json)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    out = RESULTS / "presets.json"
    runs = {(r["preset"], r["code"]): r for r in (json.loads(out.read_text()) if out.exists() else [])}
    for spec in args.runs:
        preset, code = spec.split(":")
        runs[(preset, code)] = run(preset, code, args.seed)
        atomic_write_text(out, json.dumps(sorted(runs.values(), key=lambda r: (r["code"], r["preset"])), indent=2,
                                          default=float) + "\n")
    done = sorted(runs.values(), key=lambda r: (r["code"], r["preset"]))
    atomic_write_text(RESULTS / "presets.md", markdown(done))
    print(markdown(done), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
