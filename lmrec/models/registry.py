"""The model registry: name -> class, listed here explicitly. "Supported: ..." messages are built
from it, and ``Recommender.load`` finds a saved model's class in it (the dict lives in
``lmrec.models.base`` so that loading needs no import back up from the base class)."""
from __future__ import annotations

from typing import Any

from lmrec.errors import ConfigError
from lmrec.models.base import MODELS, Recommender
from lmrec.models.blend import Blend
from lmrec.models.ease import EASE
from lmrec.models.itemknn import ItemKNN
from lmrec.models.lightgcn import LightGCN
from lmrec.models.lm import LMRanker
from lmrec.models.mf import BPRMF
from lmrec.models.peers import CornacBPR, ImplicitModel
from lmrec.models.popularity import MostPopular, Random
from lmrec.models.text_knn import TextKNN

MODELS.update({cls.name: cls for cls in (Random, MostPopular, ItemKNN, EASE, BPRMF, LightGCN, TextKNN, LMRanker,
                                         ImplicitModel, CornacBPR, Blend)})


PRESET_MODELS = {"lm-ranker": LMRanker}  # models with named configurations (``preset=...``)


def create_model(name: str, **params: Any) -> Recommender:
    """Instantiate a registered model by name with keyword hyperparameters (``preset=NAME`` first
    applies a named configuration of models that have them, e.g. ``lm-ranker:preset=sequential``)."""
    if name not in MODELS:
        raise ConfigError(f"Unknown model {name!r}; supported: {', '.join(MODELS)}.")
    if "preset" in params:
        if name not in PRESET_MODELS:
            raise ConfigError(f"model {name!r} has no presets; models with presets: {', '.join(PRESET_MODELS)}.")
        return PRESET_MODELS[name].preset(params.pop("preset"), **params)
    try:
        return MODELS[name](**params)
    except TypeError as exc:
        import inspect

        allowed = [p for p in inspect.signature(MODELS[name].__init__).parameters if p != "self"]
        raise ConfigError(f"Bad parameters for model {name!r} ({exc}); it takes {allowed}.") from None
