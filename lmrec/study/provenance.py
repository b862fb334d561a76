"""What every result records: the command, UTC date, machine, library versions and git commit."""
from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def git_commit(root: Path = ROOT) -> str:
    """HEAD's commit, with "+dirty" when tracked files other than benchmark results differ from it
    (a benchmark appends to its own results as it goes: that is not a code change)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)benchmarks/results"], cwd=root, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, GPU {gpu}"


def versions() -> str:
    import torch

    try:
        import transformers

        extra = f", transformers {transformers.__version__}"
    except ImportError:  # the light install has no transformers
        extra = ""
    return f"python {platform.python_version()}, torch {torch.__version__}{extra}"


def command_line(argv: list[str] | None = None) -> str:
    """This process's command as a user would type it (a script under the repository relative to it)."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve() if argv else Path("python")
    shown = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else (argv[0] if argv else "")
    if shown.endswith("__main__.py"):
        shown = "-m " + shown[: -len("/__main__.py")].replace("/", ".")
    elif shown.startswith("benchmarks/") and shown.endswith(".py"):
        shown = "-m " + shown[:-3].replace("/", ".")
    return "python " + " ".join([shown, *argv[1:]])


def run_info(command: str | None = None) -> dict[str, Any]:
    """Command, UTC date, machine and versions of this run, and the commit."""
    return {"command": command or command_line(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "versions": versions(), "commit": git_commit()}


def header(info: dict[str, Any]) -> str:
    """The Markdown lines that name how a result was made."""
    return (f"- command: `{info.get('command', 'not recorded')}`\n"
            f"- date: {info.get('date', 'not recorded')}; commit `{info.get('commit', 'not recorded')}`\n"
            f"- machine: {info.get('machine', 'not recorded')}; {info.get('versions', '')}\n")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (a cell run with ``isolate`` has its own)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


RESULTS = ROOT / "benchmarks" / "results"  # where a checkout keeps its committed result pages
