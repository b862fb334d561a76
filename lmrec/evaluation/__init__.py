"""Evaluation: metrics by name, the full-ranking evaluator, compare and its Report."""
from lmrec.evaluation.evaluator import DEFAULT_METRICS, EvalResult, Evaluator
from lmrec.evaluation.metrics import parse_metric

__all__ = ["DEFAULT_METRICS", "EvalResult", "Evaluator", "parse_metric"]
