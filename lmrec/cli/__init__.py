"""The `lmrec` command line: ``main`` parses and runs one command; its sub-parts live beside it."""
from lmrec.cli.main import main, parse_model_spec

__all__ = ["main", "parse_model_spec"]
