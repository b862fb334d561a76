"""Named LMRanker configurations, each the one chosen on a protocol's validation data.

* ``"sequential"`` -- time-ordered histories (purchases, sessions): a causal Transformer over the
  last 50 items, 2 graph layers, no IDs (new items and users score at once), d = 128, cosine at
  τ 0.05, full softmax over the items a user has not seen, weight decay 3 (P2's choice).
* ``"warm"`` -- order-free histories of known users and items: the mean tower with user and item
  IDs (plus a second item table for histories), history dropout 0.2, 2 graph layers, d = 256,
  cosine at τ 0.15, the catalogue scored once per user of a batch of 4096 (P1's choice).
* ``"cold-start"`` -- new items with text matter most (P4's choice, made on a cold validation built
  from P4's training data alone, ``benchmarks/finetune.py search-cold``): ID-free, no graph, the
  mean tower over a linear projection that starts as the identity at the encoder's own size
  (d = 384 for MiniLM), cosine at τ 0.05, full softmax over the unseen items with cold items never
  negatives, weight decay 3, texts cut at 64 tokens. On P4's cold test items it beats text-kNN on
  the same encoder and seeds (NDCG@10 among cold items 0.1527 against 0.1365, +0.0162, paired
  p 1.4e-33; benchmarks/results/finetune.md), so it is the model to start from for cold items.

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
from lmrec.text.options import Encoder
from lmrec.training.negatives import Unseen

# training ends on a plateau of the validation metric; a line per epoch shows it (TrainConfig.progress)
PLATEAU = dict(plateau_decay=0.5, patience=4, epochs=60)


def sequential() -> dict[str, Any]:
    return dict(items=ItemTower(dim=128, graph_layers=2), user=SequenceUser(), scorer=Cosine(0.05), loss="softmax",
                negatives=Unseen(), config=dict(batch_size=1024, lr=1e-3, weight_decay=3.0, **PLATEAU))


def warm() -> dict[str, Any]:
    return dict(items=ItemTower(dim=256, ids=True, history_ids=True, graph_layers=2),
                user=MeanUser(ids=True, history_dropout=0.2), scorer=Cosine(0.15), loss="softmax",
                negatives=Unseen(per_user=True), config=dict(batch_size=4096, lr=4e-3, **PLATEAU))


def cold_start() -> dict[str, Any]:
    return dict(encoder=Encoder(max_length=64), items=ItemTower(dim=None, identity_init=True), user=MeanUser(),
                scorer=Cosine(0.05), loss="softmax", negatives=Unseen(pool="train-items"),
                config=dict(batch_size=1024, lr=1e-3, weight_decay=3.0, **PLATEAU))


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
