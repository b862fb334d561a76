"""Optional dependencies: ``pip install lmrec`` is the core; features beyond it come with extras.

The core (data, evaluation, baselines, the LM ranker with its default encoder) imports none of
the packages below. A feature that needs one calls :func:`require` where it imports it, so that a
user without the extra gets one line naming the feature and the ``pip install`` that adds it,
instead of a ``ModuleNotFoundError`` from deep inside. A module that is all about one feature
imports its packages at the top, inside :func:`needs`.

>>> faiss = require("faiss", "ann", "the HNSW vector index")  # doctest: +SKIP
>>> with needs("serve", "lmrec serve"):                        # doctest: +SKIP
...     from fastapi import FastAPI

Without faiss the first raises ``MissingExtra: the HNSW vector index needs faiss, which lmrec's
core install leaves out: pip install 'lmrec[ann]' (No module named 'faiss')``; the ``lmrec``
command prints that as one line and exits with status 2.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from lmrec.errors import LmrecError

# extra -> what it adds; pyproject.toml's [project.optional-dependencies] declares exactly these
# (tests/test_extras.py checks both ways), plus "all" (every one) and "test" (test tools + all but ray)
EXTRAS: dict[str, str] = {
    "serve": "the HTTP server: lmrec serve (fastapi, uvicorn, prometheus-client)",
    "ann": "approximate and compressed vector indexes for serving (faiss-cpu)",
    "tune": "LoRA tuning of the encoder (peft)",
    "encoders": "the sentence-transformers backend and the SmolLM2 conversion (sentence-transformers, gguf)",
    "plots": "PNG figures of reports and studies (matplotlib)",
    "peers": "the implicit and Cornac models (implicit, cornac)",
    "tracking": "TensorBoard and MLflow trackers (tensorboard, mlflow-skinny)",
    "ray": "launching training on Ray Train (ray[train])",
    "docs": "building the documentation site (mkdocs, mkdocs-material, mkdocstrings)",
}


class MissingExtra(LmrecError):
    """A feature's optional package is not installed; the message names the extra that adds it.

    Attributes
    ----------
    module, extra, feature:
        What was imported, the extra that installs it, and the feature that needed it.
    """

    def __init__(self, module: str, extra: str, feature: str, reason: str = "") -> None:
        self.module, self.extra, self.feature = module, extra, feature
        top = module.split(".")[0]
        message = (f"{feature} needs {top}, which lmrec's core install leaves out: "
                   f"pip install 'lmrec[{extra}]'")
        super().__init__(f"{message} ({reason})" if reason else message)


def _check(extra: str, what: str) -> None:
    if extra not in EXTRAS:  # a mistake in lmrec itself: every message must name a real extra
        raise ValueError(f"{what}: unknown extra {extra!r}; lmrec's extras are {', '.join(EXTRAS)}")


def _reason(exc: ImportError) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` (dotted names work) or raise :class:`MissingExtra` naming ``extra``.

    Parameters
    ----------
    module:
        The module to import, e.g. ``"faiss"`` or ``"torch.utils.tensorboard"``.
    extra:
        The lmrec extra that installs it: a key of :data:`EXTRAS`.
    feature:
        What the user asked for, in their words: ``"lmrec serve"``, ``"tune='lora'"``.
    """
    _check(extra, f"require({module!r})")
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # missing, or installed but broken (the reason says which)
        raise MissingExtra(exc.name or module, extra, feature, _reason(exc)) from exc


@contextmanager
def needs(extra: str, feature: str) -> Iterator[None]:
    """Around a module's imports of optional packages: an ImportError in the block becomes
    :class:`MissingExtra` naming the package that failed, ``extra`` and ``feature``."""
    _check(extra, f"needs({feature!r})")
    try:
        yield
    except ImportError as exc:
        raise MissingExtra(exc.name or "an optional package", extra, feature, _reason(exc)) from exc
