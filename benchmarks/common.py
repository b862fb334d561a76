"""What every benchmark result records: command, date, machine, library versions, git commit."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def git_commit() -> str:
    """HEAD's commit, with "+dirty" when tracked files other than benchmark results differ from it
    (a benchmark appends to its own results as it goes: that is not a code change)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)benchmarks/results"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def run_info() -> dict[str, Any]:
    """Command, UTC date, machine and versions of this run."""
    import transformers

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else sys.argv[0]
    return {"command": "python " + " ".join([shown, *sys.argv[1:]]),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, "
                       f"GPU {gpu}",
            "versions": f"python {platform.python_version()}, torch {torch.__version__}, "
                        f"transformers {transformers.__version__}",
            "commit": git_commit()}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def training_cost(model: Any) -> dict[str, Any]:
    """Epochs run, the best (kept) epoch and mean wall / CPU seconds per epoch of a trained model's log."""
    log = model.training_log_
    return {"epochs": len(log), "best_epoch": model.best_epoch_,
            "seconds_per_epoch": round(float(np.mean([r["train_seconds"] for r in log])), 2),
            "cpu_seconds_per_epoch": round(float(np.mean([r["train_cpu_seconds"] for r in log])), 2)}


def header(info: dict[str, Any]) -> str:
    """The Markdown lines that open a result file."""
    return (f"- command: `{info['command']}`\n- date: {info['date']}; commit `{info['commit']}`\n"
            f"- machine: {info['machine']}; {info['versions']}\n")


def baseline_params(code: str, name: str) -> dict[str, Any]:
    """The validation-chosen parameters of baseline ``name`` on protocol ``code``
    (benchmarks/baselines.py's results), {} when it has none."""
    path = RESULTS / f"baselines_{code}.json"
    if path.exists():
        for row in json.loads(path.read_text())["rows"]:
            if row["model"] == name:
                return row["params"]
    return {}
