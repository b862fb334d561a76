"""The experiments layer: a declared grid of cells (model spec x protocol x seed x perturbation), one
store keyed by parameters with the code version of each cell, one runner, one report.

``lmrec study SPEC.toml`` runs a spec (its ``[grid.NAME]`` sections: models x protocols x seeds, as the
benchmarks' specs in ``benchmarks/specs/``); :func:`compare` is a one-section study of models on a split.
"""
from lmrec.study.compare import compare, labels, with_seed
from lmrec.study.compare_report import ModelRow, Report
from lmrec.study.plan import run_study
from lmrec.study.spec import StudySpec, load_spec

__all__ = ["ModelRow", "Report", "StudySpec", "compare", "labels", "load_spec", "run_study", "with_seed"]
