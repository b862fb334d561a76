"""How long the main job (`make run` once installed) takes: wall and CPU seconds, cold and warm embedding cache.

Runs `lmrec compare` with the Makefile's MAIN_JOB arguments twice: first with an empty embedding cache
(a fresh machine: the item titles are encoded), then again (the vectors are read from the cache), each in
its own process; writes benchmarks/results/main_job.{md,json}. Run it alone: its figures are speeds.

    LMREC_DATA_DIR=../shared/datasets HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.main_job
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lmrec.storage.artifacts import atomic_write_text
from lmrec.study.pages import ResultsPage
from lmrec.study.provenance import RESULTS, ROOT, header, run_info
from lmrec.study.render import Table

TARGET_S = 300  # issue 39: the main job within 5 minutes on these 2 cores


def main_job_args() -> list[str]:
    out = subprocess.run(["make", "-s", "main-job-args"], cwd=ROOT, capture_output=True, text=True, check=True)
    return shlex.split(out.stdout)


def run_once(argv: list[str], home: Path, out: Path) -> dict[str, Any]:
    """One main job in a child process whose home is ``home`` (its embedding cache is
    ``home/.cache/lmrec/embeddings``): its wall and CPU seconds, and its NDCG@10 per model."""
    argv = [*argv[: argv.index("--out")], "--out", str(out), *argv[argv.index("--out") + 2:]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HOME": str(home)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lmrec.cli", "compare", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"the main job failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads((out / "report.json").read_text())
    ndcg = {row["name"]: row["means"]["ndcg@10"] for row in report["rows"]}
    fit = {row["name"]: row.get("fit_seconds") for row in report["rows"]}
    epochs = [line for line in done.stderr.splitlines() if re.search(r" epoch \d+/\d+:", line)]
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "ndcg@10": ndcg, "fit_s": fit, "epoch_lines": len(epochs)}


def page(info: dict[str, Any]) -> ResultsPage:
    """The results page of a run's record (``main_job.json``)."""
    runs = info["runs"]
    models = list(runs["cold cache"]["ndcg@10"])
    table = Table("", ["run", "wall s", "CPU s (user + sys)", "within 5 min", "order by test NDCG@10"],
                  [[name, f"{r['wall_s']:.0f}", f"{r['cpu_s']:.0f}", "yes" if r["wall_s"] <= TARGET_S else "no",
                    " > ".join(sorted(r["ndcg@10"], key=r["ndcg@10"].get, reverse=True))] for name, r in runs.items()],
                  "The main job: `lmrec compare` with the Makefile's MAIN_JOB (installation not included).")
    cold = runs["cold cache"]
    sentences = [f"The main job took {cold['wall_s']:.0f} s wall with an empty embedding cache and "
                 f"{runs['warm cache']['wall_s']:.0f} s with the item vectors cached, against a 300 s target.",
                 f"The LM ranker's fit took {cold['fit_s'].get(models[0]) or 0:.0f} s of it; it printed "
                 f"{cold['epoch_lines']} epoch lines with validation figures.",
                 "The epoch budgets (LM ranker 18, BPR-MF 36) were chosen on P3 validation (see the Makefile)."]
    per_model = Table("Test NDCG@10 per model", ["model", *runs],
                      [[m, *[f"{r['ndcg@10'][m]:.4f}" for r in runs.values()]] for m in models])
    return ResultsPage("How long the main job takes", "Does `make run` finish within 5 minutes on 2 cores?", table,
                       sentences, [header(info), f"MAIN_JOB: `{info['main_job']}`", per_model],
                       regenerate="python -m benchmarks.main_job")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", action="store_true", help="rebuild main_job.md from main_job.json, run nothing")
    if parser.parse_args(argv).report:
        info = json.loads((RESULTS / "main_job.json").read_text())
    else:
        job = main_job_args()
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            runs = {"cold cache": run_once(job, home, Path(tmp) / "cold"),
                    "warm cache": run_once(job, home, Path(tmp) / "warm")}
        info = {**run_info(), "main_job": shlex.join(job), "runs": runs}
        atomic_write_text(RESULTS / "main_job.json", json.dumps(info, indent=1) + "\n")
    result = page(info)
    result.write(RESULTS / "main_job.md")
    print(result.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
