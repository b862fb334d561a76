"""Experiments: train and evaluate several models on a split (``compare``), its Report, the result cache.

This layer sits above models and evaluation: it fits models and evaluates them; nothing below imports it.
"""
from lmrec.experiments.compare import compare, with_seed
from lmrec.experiments.report import ModelRow, Report
from lmrec.experiments.result_cache import ResultCache, result_key

__all__ = ["ModelRow", "Report", "ResultCache", "compare", "result_key", "with_seed"]
