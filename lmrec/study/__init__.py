"""``lmrec study``: a declared grid of experiments, run resumably, reported as one HTML page."""
from lmrec.study.runner import run_study
from lmrec.study.spec import StudySpec, load_spec

__all__ = ["StudySpec", "load_spec", "run_study"]
