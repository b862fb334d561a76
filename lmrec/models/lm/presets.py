"""Named LMRanker configurations, each the one chosen on a protocol's validation data.

* ``"sequential"`` -- time-ordered histories (purchases, sessions): a causal Transformer over the
  last 50 items, 2 graph layers, no IDs (new items and users score at once), d = 128, cosine at
  τ 0.05, full softmax over the items a user has not seen, weight decay 3 (P2's choice).
* ``"warm"`` -- order-free histories of known users and items: the mean tower with user and item
  IDs (plus a second item table for histories), history dropout 0.2, 2 graph layers, d = 256,
  cosine at τ 0.15, the catalogue scored once per user of a batch of 4096 (P1's choice).
* ``"cold-start"`` -- new items with text matter most: ID-free, no graph, cold items never
  negatives; otherwise the sequential settings (P4's configuration, fixed before its test was
  read; the search over a cold validation, ``benchmarks/finetune.py search-cold``, has not been
  run to completion).

Each preset's training halves the learning rate at each validation without improvement
(restarting from the best weights) and stops after 4 in a row; all are bounded by epochs.

>>> LMRanker.preset("sequential").fit(split.train, split.valid)   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Callable

from lmrec.errors import ConfigError
from lmrec.models.lm.items import ItemTower
from lmrec.models.lm.scorers import Cosine
from lmrec.models.lm.users import MeanUser, SequenceUser

PLATEAU = dict(plateau_decay=0.5, patience=4, epochs=60, progress=False)


def sequential() -> dict[str, Any]:
    return dict(items=ItemTower(dim=128, graph_layers=2), user=SequenceUser(), scorer=Cosine(0.05), loss="softmax",
                config=dict(sampler="unseen", batch_size=1024, lr=1e-3, weight_decay=3.0, **PLATEAU))


def warm() -> dict[str, Any]:
    return dict(items=ItemTower(dim=256, ids=True, history_ids=True, graph_layers=2),
                user=MeanUser(ids=True, history_dropout=0.2, shared_negatives=True), scorer=Cosine(0.15),
                loss="softmax", config=dict(sampler="unseen", batch_size=4096, lr=4e-3, **PLATEAU))


def cold_start() -> dict[str, Any]:
    return dict(items=ItemTower(dim=128), user=SequenceUser(), scorer=Cosine(0.05), loss="softmax",
                config=dict(sampler="unseen", negative_pool="train-items", batch_size=1024, lr=1e-3,
                            weight_decay=3.0, **PLATEAU))


PRESETS: dict[str, Callable[[], dict[str, Any]]] = {"sequential": sequential, "warm": warm, "cold-start": cold_start}


def preset_params(name: str, **overrides: Any) -> dict[str, Any]:
    """The LMRanker keyword arguments of preset ``name``, with ``overrides`` on top (a ``config``
    dict is merged into the preset's training settings)."""
    if name not in PRESETS:
        raise ConfigError(f"Unknown LMRanker preset {name!r}; supported: {', '.join(PRESETS)}.")
    params = PRESETS[name]()
    if isinstance(overrides.get("config"), dict):
        overrides["config"] = {**params["config"], **overrides["config"]}
    return {**params, **overrides}
