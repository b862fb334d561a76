"""Safe retraining: new events + the current model's data -> a candidate, promoted only if not worse.

1. Read the positive events newer than the ones the current model already learnt from
   (``events_through_id`` in its manifest), and the items added through the API.
2. Hold out the most recent share of those events as the test set: the newest by the server's
   ``received`` time, never by the client's ``timestamp``, which a client could set to move its
   events into or out of the comparison.
3. Merge the older ones with the current model's training interactions (its id maps stay a
   prefix, new users are appended) and fine-tune a candidate from the current weights.
4. Evaluate candidate and current model on the held-out events with the same full-ranking
   evaluator, over the items both know and the users the current model knows.
5. Promote (a new version folder written atomically, then CURRENT) only when
   ``candidate >= current - margin``; otherwise keep the current version and say why.

Against flooding and poisoning (fake users pushing items through ``POST /events``):

* a round reads at most ``max_user_events`` events per user and ``max_item_events`` per item (the
  first received; the rest are dropped and counted);
* an item whose events in the round reach ``jump_min`` and ``jump_factor`` times what its
  training popularity predicts is flagged, and a round with a flagged item is not promoted
  until an operator accepts the item (``accept_jumps``, ``lmrec retrain --accept-jump ID``);
* a holdout on which both models score 0 shows nothing, so it does not promote either.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from lmrec.data.interactions import Interactions
from lmrec.data.splits import _make
from lmrec.errors import ConfigError, check_positive
from lmrec.evaluation.evaluator import EvalTask, evaluate_task
from lmrec.evaluation.metrics import parse_metric
from lmrec.models.base import Recommender
from lmrec.models.capabilities import AddsItems, ItemText
from lmrec.serving.events import EventStore
from lmrec.storage.versions import ModelStore
from lmrec.training.config import TrainConfig


@dataclass
class RetrainConfig:
    """holdout: share of the newest events kept for the comparison; margin: how much worse (in
    ``metric``) the candidate may be and still be promoted; positive_types / min_value: which
    events count as a positive interaction; epochs / lr: the fine-tuning run."""

    holdout: float = 0.2
    margin: float = 0.0
    metric: str = "ndcg@10"
    positive_types: tuple[str, ...] = ("click", "like", "purchase", "rating", "view", "watch")
    min_value: float = 0.0
    min_events: int = 20
    epochs: int = 5
    lr: float | None = None
    seed: int = 2026
    max_user_events: int = 500
    max_item_events: int = 5000
    jump_factor: float = 10.0
    jump_min: int = 20
    accept_jumps: tuple[str, ...] = ()


@dataclass
class RetrainResult:
    promoted: bool
    reason: str
    current_version: str
    candidate_version: str | None = None
    metric: str = "ndcg@10"
    current_score: float | None = None
    candidate_score: float | None = None
    events: dict[str, int] = field(default_factory=dict)
    flagged: list[dict[str, Any]] = field(default_factory=list)  # item, events, expected
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Padded:
    """The current model seen through the candidate's (larger) id space: extra items score -inf."""

    def __init__(self, model: Recommender, n_items: int) -> None:
        self.model, self.n_items = model, n_items

    def score_batch(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        rows = sp.csr_matrix(history[users][:, : self.model.n_items_])
        s = self.model.score_rows(users, rows)
        out = torch.full((len(users), self.n_items), -torch.inf)
        out[:, : s.shape[1]] = s
        return out


def _positive_events(frame: pd.DataFrame, cfg: RetrainConfig) -> pd.DataFrame:
    keep = frame["type"].isin(cfg.positive_types) & (frame["value"] >= cfg.min_value)
    return frame[keep].sort_values(["received", "id"], kind="stable").reset_index(drop=True)


def _capped(events: pd.DataFrame, cfg: RetrainConfig) -> pd.DataFrame:
    """The first ``max_user_events`` events of each user and ``max_item_events`` of each item
    (events are in received order)."""
    keep = (events.groupby("user").cumcount() < cfg.max_user_events).to_numpy()
    kept = events[keep]
    return kept[(kept.groupby("item").cumcount() < cfg.max_item_events).to_numpy()].reset_index(drop=True)


def popularity_jumps(events: pd.DataFrame, current: Recommender, cfg: RetrainConfig) -> list[dict[str, Any]]:
    """Items whose events in this round reach ``jump_min`` and ``jump_factor`` times the count their
    training popularity predicts, (count + 1) / (interactions + items) of the round, largest first."""
    counts = events["item"].value_counts()
    train_counts = np.asarray(current.train_matrix_.sum(axis=0)).reshape(-1)
    by_raw = {str(raw): i for i, raw in enumerate(current.item_ids_.tolist())}
    total = train_counts.sum() + len(train_counts)
    flagged = []
    for item, n in counts.items():
        index = by_raw.get(str(item))
        share = (train_counts[index] + 1 if index is not None and index < len(train_counts) else 1) / total
        expected = len(events) * share
        if n >= cfg.jump_min and n >= cfg.jump_factor * expected and str(item) not in cfg.accept_jumps:
            flagged.append({"item": str(item), "events": int(n), "expected": round(float(expected), 2)})
    return sorted(flagged, key=lambda f: -f["events"])


def _merge(current: Recommender, events: pd.DataFrame) -> tuple[Interactions, np.ndarray]:
    """Current training pairs + events as one Interactions (old ids first); returns (data, event rows)."""
    coo = current.train_matrix_.tocoo()
    user_ids = [str(u) for u in current.user_ids_.tolist()]
    known_users = set(user_ids)
    new_users = [u for u in dict.fromkeys(events["user"].tolist()) if u not in known_users]
    user_ids += new_users
    umap = {u: i for i, u in enumerate(user_ids)}
    imap = {str(raw): i for i, raw in enumerate(current.item_ids_.tolist())}
    old_ts = coo.data.astype(np.int64)  # recency ranks: older interactions first
    users = np.r_[coo.row, events["user"].map(umap).to_numpy()].astype(np.int64)
    items = np.r_[coo.col, events["item"].map(imap).to_numpy()].astype(np.int64)
    ts = np.r_[old_ts, old_ts.max(initial=0) + 1 + np.arange(len(events))]
    item_table = current.item_table() if isinstance(current, ItemText) else pd.DataFrame()
    user_table = current.user_table() if isinstance(current, ItemText) else pd.DataFrame()
    if len(user_table.columns):
        user_table = user_table.reindex(range(len(user_ids)))
    data = Interactions(users=users, items=items, ratings=np.ones(len(users), np.float32), timestamps=ts,
                        user_ids=np.asarray(user_ids, dtype=object), item_ids=current.item_ids_,
                        item_table=item_table, user_table=user_table, name="retrain")
    return data, np.arange(len(coo.data), len(users))


def retrain(store: ModelStore, events: EventStore, cfg: RetrainConfig | None = None,
            train_config: dict[str, Any] | None = None) -> RetrainResult:
    """Run one retraining round on ``store`` with the events in ``events``; see the module doc."""
    cfg = cfg or RetrainConfig()
    for name in ("max_user_events", "max_item_events", "jump_factor", "jump_min", "min_events", "epochs"):
        check_positive("RetrainConfig", name, getattr(cfg, name))
    start = time.perf_counter()
    if store.single:
        raise ConfigError(f"{store.root} is a single model directory; retraining promotes versions into a store. "
                          f"Create one with: lmrec publish {store.root} STORE_DIR")
    version = store.current()
    current = Recommender.load(store.current_path())
    stored_items = events.items()
    if len(stored_items) and isinstance(current, AddsItems):
        unknown = stored_items[~stored_items["item"].isin([str(i) for i in current.item_ids_.tolist()])]
        if len(unknown):
            current.add_items(unknown.reset_index(drop=True))
    through = int(current.manifest_.get("metrics", {}).get("events_through_id", 0))
    raw = events.events(after_id=through)
    fresh = _positive_events(raw, cfg)
    known_items = {str(i) for i in current.item_ids_.tolist()}
    known = fresh[fresh["item"].isin(known_items)].reset_index(drop=True)
    usable = _capped(known, cfg)
    counts = {"read": len(raw), "positive": len(fresh), "unknown_items": len(fresh) - len(known),
              "over_caps": len(known) - len(usable)}
    result = RetrainResult(False, "", version, metric=cfg.metric, events=counts,
                           flagged=popularity_jumps(usable, current, cfg))
    if len(usable) < cfg.min_events:
        result.reason = f"only {len(usable)} usable new events (need {cfg.min_events}); keeping {version}"
        result.seconds = time.perf_counter() - start
        return result

    n_hold = max(1, math.ceil(cfg.holdout * len(usable)))
    data, event_rows = _merge(current, usable)
    hold_rows = event_rows[-n_hold:]
    train_rows = np.setdiff1d(np.arange(len(data)), hold_rows)
    split = _make(data, (train_rows, np.zeros(0, np.int64), hold_rows), protocol="retrain", seed=None, kind="retrain")
    train = _dedupe(split.train)
    known_users = np.arange(current.n_users_)
    test = split.test.subset(np.isin(split.test.users, known_users))
    counts.update(train_events=len(usable) - n_hold, holdout=int(len(test)))

    if len(test) == 0:
        result.reason = (f"none of the {n_hold} newest events comes from a user the current model knows; "
                         f"nothing to compare on, keeping {version}")
        result.seconds = time.perf_counter() - start
        return result

    params = current.get_params()
    if "config" in params:
        tc = {**TrainConfig.from_any(params["config"]).to_dict(), "epochs": cfg.epochs, "progress": False,
              "run_dir": None, "seed": cfg.seed, **(train_config or {})}
        if cfg.lr is not None:
            tc["lr"] = cfg.lr
        params["config"] = tc
    candidate = type(current)(**params).fit(train, init_from=current if "config" in params else None)

    spec = parse_metric(cfg.metric)
    task = EvalTask.build(train, test, candidates=np.arange(current.n_items_))
    cand_score = evaluate_task(candidate, task, [spec]).summary()[spec.label]
    cur_score = evaluate_task(_Padded(current, candidate.n_items_), task, [spec]).summary()[spec.label]  # type: ignore[arg-type]
    result.current_score, result.candidate_score = float(cur_score), float(cand_score)
    if result.flagged:
        named = ", ".join(f"{f['item']} ({f['events']} events, {f['expected']} expected)" for f in result.flagged[:5])
        result.reason = (f"popularity jump in this round's events: {named}; review them, then accept with "
                         f"--accept-jump ITEM; keeping {version}")
    elif cand_score == 0 and cur_score == 0:
        result.reason = (f"both models score {spec.label} 0 on the {len(test)} held-out events: nothing shows the "
                         f"candidate is not worse; keeping {version}")
    elif cand_score >= cur_score - cfg.margin:
        through_id = int(usable["id"].iloc[-n_hold:].min()) - 1  # held-out events are learnt next round
        name = store.publish(candidate, metrics={f"holdout_{spec.label}": float(cand_score),
                                                 "events_through_id": through_id, "previous_version": version})
        result.promoted, result.candidate_version = True, name
        result.reason = (f"candidate {spec.label} {cand_score:.4f} >= current {cur_score:.4f} - margin {cfg.margin}; "
                         f"promoted {name}")
    else:
        result.reason = (f"candidate {spec.label} {cand_score:.4f} < current {cur_score:.4f} - margin {cfg.margin}; "
                         f"keeping {version}")
    result.seconds = time.perf_counter() - start
    return result


def _dedupe(data: Interactions) -> Interactions:
    """Keep the latest of repeated (user, item) pairs."""
    order = np.lexsort((data.timestamps, data.items, data.users))
    pair = data.users[order] * np.int64(data.n_items) + data.items[order]
    last = np.r_[pair[1:] != pair[:-1], True]
    return data.subset(np.sort(order[last]))
