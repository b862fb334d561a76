"""The HTTP ranking service and its feedback loop (``lmrec serve``, ``lmrec retrain``).

``create_app(ServeConfig(model="store/"))`` builds the FastAPI app that ``lmrec serve`` runs;
``open_event_store`` opens the SQLite store of the events it receives; a retraining round on
those events behind a promotion gate is ``lmrec.serving.retrain.retrain``, set by
:class:`RetrainConfig`; ``build_index`` makes the vector index a factorised model is served from.

The names are imported on first use, so ``import lmrec.serving`` needs no web framework (the
app needs ``pip install 'lmrec[serve]'``).

>>> from lmrec.serving import ServeConfig, create_app
>>> app = create_app(ServeConfig(model="store/", api_key="s3cret"))   # doctest: +SKIP
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lmrec.serving.app import create_app
    from lmrec.serving.config import ServeConfig
    from lmrec.serving.events import open_event_store
    from lmrec.serving.index import build_index
    from lmrec.serving.retrain_config import RetrainConfig

# name -> the module that defines it (imported when the name is first asked for)
_HOMES = {"create_app": "app", "ServeConfig": "config", "open_event_store": "events", "build_index": "index",
          "RetrainConfig": "retrain_config"}
__all__ = ["RetrainConfig", "ServeConfig", "build_index", "create_app", "open_event_store"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'lmrec.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lmrec.serving.{_HOMES[name]}"), name)
