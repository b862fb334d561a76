"""Analyses of trained models: explanations."""
from lmrec.analysis.explain import Explanation, explain

__all__ = ["Explanation", "explain"]
