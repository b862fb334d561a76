"""``lmrec study SPEC``: run a declared grid of experiments and write its report.

Example: ``lmrec study examples/study.toml`` writes reports/study/index.html (and report.md,
report.json). Run it again after an interruption or after adding cells: finished cells are read
back, not retrained. A cell stored by another code version is stale: it is computed again, unless
``--keep-stale`` (compute only missing cells; a spec's ``keep_stale = true`` makes it the default,
``--recompute-stale`` overrides that) or ``--report-only`` (compute nothing; the report names
the code version of every cell it shows).
"""
from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from lmrec.extras import require
from lmrec.study.report import write_report
from lmrec.study.plan import run_study
from lmrec.study.spec import load_spec


def cmd_study(args: argparse.Namespace) -> int:
    require("matplotlib", "plots", "lmrec study (its report's figures)")  # before any cell runs
    spec = load_spec(args.spec)
    out = args.out or spec.out
    keep_stale = True if args.keep_stale else False if args.recompute_stale else None  # None: the spec's
    results = run_study(spec, out, progress=args.progress, report_only=args.report_only, keep_stale=keep_stale)
    page = write_report(results, out, "lmrec " + shlex.join(args.argv))
    print(json.dumps({"report": str(page), "cells": len(results.cells), "computed": results.computed,
                      "reused": results.reused, "stale": results.stale, "missing": results.missing,
                      "seconds": round(results.seconds, 1)}, indent=2))
    return 0


def add_study_command(sub: Any) -> None:
    p = sub.add_parser("study", help="run a study spec (grids, losses, fairness, robustness, explanations) and write "
                                     "an HTML report", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="a study spec (TOML), e.g. examples/study.toml")
    p.add_argument("--out", help="report folder (default: the spec's [study] out)")
    p.add_argument("--report-only", action="store_true",
                   help="compute nothing: report the stored cells, whichever code version computed them")
    stale = p.add_mutually_exclusive_group()
    stale.add_argument("--keep-stale", action="store_true",
                       help="reuse cells stored by another code version; compute only the missing ones")
    stale.add_argument("--recompute-stale", action="store_true",
                       help="recompute cells stored by another code version, though the spec says keep_stale")
    p.add_argument("--progress", type=lambda s: s.lower() != "false", default=True,
                   help="progress (true/false): a bar over cells on a terminal, else a line per computed cell")
    p.set_defaults(func=cmd_study)
