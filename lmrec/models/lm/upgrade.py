"""Saved LMRanker parameters of older layouts, converted to the current one (layout 3).

Layout 2 (lmrec before the tuning and negatives parts) kept the encoder's tuning as flat
``Encoder`` fields (``tune``, ``lora``, ``lr``, ``grad_items``, ``refresh_every``,
``checkpointing``), the negatives as ``TrainConfig`` fields (``sampler``, ``n_negatives``,
``pop_alpha``, ``hard_pool``, ``negative_pool``) and the per-user softmax as
``MeanUser(shared_negatives=True)``. Its arrays and encoder files are those of layout 3, so
only the parameters change: :func:`upgrade_layout2` is what ``LMRanker.upgrades[2]`` runs on load.

>>> upgrade_layout2({"encoder": "minilm", "user": {"type": "mean", "shared_negatives": True},
...                  "config": {"sampler": "unseen", "lr": 0.004}})["negatives"]
{'type': 'unseen', 'pool': 'all-items', 'per_user': True}
"""
from __future__ import annotations

from typing import Any, Mapping

from lmrec.text.options import upgrade_encoder
from lmrec.training.config import TrainConfig
from lmrec.training.negatives import CONFIG_FIELDS, Unseen, negatives_from_config


def upgrade_layout2(params: Mapping[str, Any]) -> dict[str, Any]:
    """Layout-2 constructor parameters as layout-3 ones (see the module docstring)."""
    out = dict(params)
    if isinstance(out.get("encoder"), Mapping):
        out["encoder"] = upgrade_encoder(out["encoder"])
    per_user = False
    if isinstance(out.get("user"), Mapping):
        user = dict(out["user"])
        per_user = bool(user.pop("shared_negatives", False))
        out["user"] = user
    config = dict(out.get("config") or {})
    negatives = negatives_from_config(TrainConfig.from_dict({k: v for k, v in config.items() if k in CONFIG_FIELDS}))
    if per_user and isinstance(negatives, Unseen):
        negatives.per_user = True
    out["negatives"] = negatives.to_dict()
    out["config"] = {k: v for k, v in config.items() if k not in CONFIG_FIELDS} if out.get("config") else out.get("config")
    return out
