"""``lmrec study SPEC``: run a declared grid of experiments and write its report.

Example: ``lmrec study examples/study.toml`` writes reports/study/index.html (and report.md,
report.json). Run it again after an interruption or after adding cells: finished cells are read
back, not retrained.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from lmrec.study.report import write_report
from lmrec.study.runner import run_study
from lmrec.study.spec import load_spec


def cmd_study(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    out = args.out or spec.out
    results = run_study(spec, out, progress=args.progress, report_only=args.report_only, code=args.code_version)
    page = write_report(results, out, "lmrec " + shlex.join(args.argv))
    print(json.dumps({"report": str(page), "cells": len(results.cells), "computed": results.computed,
                      "reused": results.reused, "seconds": round(results.seconds, 1)}, indent=2))
    return 0


def add_study_command(sub: Any) -> None:
    p = sub.add_parser("study", help="run a study spec (losses, fairness, robustness, explanations) and write "
                                     "an HTML report", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="a study spec (TOML), e.g. examples/study.toml")
    p.add_argument("--out", help="report folder (default: the spec's [study] out)")
    p.add_argument("--report-only", action="store_true", help="write the report from finished cells only")
    p.add_argument("--code-version", help="with --report-only: report the cells another code version computed "
                                          "(their digest, as a report names it)")
    p.add_argument("--progress", type=lambda s: s.lower() != "false", default=sys.stderr.isatty(),
                   help="progress bar over cells (true/false)")
    p.set_defaults(func=cmd_study)
