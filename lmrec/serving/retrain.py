"""Safe retraining: new events + the current model's data -> a candidate, promoted only if not worse.

1. Fix the trusted holdout before reading any event (:func:`lmrec.serving.gate.fixed_holdout`): the
   store's ``holdout/`` (a split's validation interactions, ``lmrec publish ... --holdout SPLIT``),
   or else a seeded sample of ``trusted_per_user`` training interactions of up to ``trusted_users``
   known users (from each one's most recent ``trusted_recent`` share), saved in the store so later
   rounds reuse it. Its pairs are never trained on.
2. Read the positive events newer than the ones the current model already learnt from
   (``events_through_id`` in its manifest), and the items added through the API; each (user, item)
   pair once, the trusted pairs left out, per-user / per-item caps (:func:`~lmrec.serving.gate.round_events`).
3. Score the round's new users with DegSim/RDMA against users the current model knows; flagged
   users' events are left out of training and of both holdouts, and reported (``suspects``).
4. Hold out the newest share of the events (by the server's ``received`` time, never the client's
   ``timestamp``), merge the rest with the current training interactions (id maps stay a prefix,
   new users are appended) and fine-tune a candidate from the current weights.
5. Evaluate on both holdouts with the same full-ranking evaluator: the newest events (candidate
   against the current model) and the trusted holdout (candidate against the current model, or,
   when the current model was trained on the trusted pairs -- a sampled holdout in its first rounds
   -- against a *control*: the same fine-tuning without the round's events, which has not seen
   them either, so the round's events are the only difference). Each holdout's pairs count as seen
   in the other's ranking.
6. Compare the top-``k`` lists of a seeded sample of known users under both models: an item whose
   reach jumps (gains ``exposure_gain`` of the sampled users and reaches ``exposure_factor`` x its
   reach + 1) is flagged.
7. Promote (a new version folder written atomically, then CURRENT) only when the candidate is not
   worse than ``current - margin`` on *both* holdouts -- worse: short of it by more than
   ``noise_z`` standard errors of the paired per-user gain, the holdout's own noise -- and no item
   is flagged; otherwise keep the current version and say which checks refused (``refused_by``). A candidate that gains on the
   newest events but loses on the trusted holdout is refused as the two disagreeing: the newest
   events are the attacker's to write, the trusted holdout is not.

Against flooding and poisoning (fake users pushing items through ``POST /events``), besides the
above: an item whose distinct users in the round reach ``jump_min`` and ``jump_factor`` times what
its training popularity predicts is flagged, and a round with a flagged item (popularity or reach)
is not promoted until an operator accepts the item (``accept_jumps``, ``--accept-jump ID``); a
holdout on which both models score 0 shows nothing, so it does not promote either.

The trusted pairs are withheld from the history of every model this loop trains, so the served
model may recommend a user their one held-out item again: the price of a holdout the stream
cannot write.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from lmrec.data.interactions import Interactions
from lmrec.errors import ConfigError
from lmrec.evaluation.evaluator import EvalTask, evaluate_task
from lmrec.evaluation.metrics import parse_metric
from lmrec.models.base import Recommender
from lmrec.models.capabilities import AddsItems, ItemText
from lmrec.serving.events import EventStore
from lmrec.serving.gate import (Suspects, exposure_check, fixed_holdout, pair_keys, paired_gap, popularity_jumps,
                                refusals as gate_refusals, round_events, suspect_new_users)
from lmrec.serving.retrain_config import RetrainConfig, RetrainResult
from lmrec.storage.versions import Holdout, ModelStore
from lmrec.training.config import TrainConfig


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


@dataclass
class _Merged:
    """The current training pairs (less the trusted ones) + the round's events, one id space."""

    data: Interactions
    old_rows: np.ndarray
    event_rows: np.ndarray
    trusted: Interactions  # the trusted pairs both the user and the item of which are known
    overlap: int  # trusted pairs the current model was trained on


def _merge(current: Recommender, events: pd.DataFrame, holdout: Holdout | None) -> _Merged:
    coo = current.train_matrix_.tocoo()
    user_ids = [str(u) for u in current.user_ids_.tolist()]
    known_users = set(user_ids)
    user_ids += [u for u in dict.fromkeys(events["user"].tolist()) if u not in known_users]
    umap = {u: i for i, u in enumerate(user_ids)}
    imap = {str(raw): i for i, raw in enumerate(current.item_ids_.tolist())}
    n_items = len(imap)
    t_users, t_items = (np.zeros(0, np.int64),) * 2
    if holdout is not None:
        tu = pd.Series(holdout.users.astype(str)).map(umap)
        ti = pd.Series(holdout.items.astype(str)).map(imap)
        ok = (tu.notna() & ti.notna() & (tu < current.n_users_)).to_numpy()  # known users only
        keys = np.unique(tu[ok].to_numpy(np.int64) * n_items + ti[ok].to_numpy(np.int64))
        t_users, t_items = keys // n_items, keys % n_items
    in_trusted = np.isin(coo.row.astype(np.int64) * n_items + coo.col, t_users * n_items + t_items)
    old_ts = coo.data.astype(np.int64)  # recency ranks: older interactions first
    users = np.r_[coo.row, events["user"].map(umap).to_numpy()].astype(np.int64)
    items = np.r_[coo.col, events["item"].map(imap).to_numpy()].astype(np.int64)
    ts = np.r_[old_ts, old_ts.max(initial=0) + 1 + np.arange(len(events))]
    item_table = current.item_table() if isinstance(current, ItemText) else pd.DataFrame()
    user_table = current.user_table() if isinstance(current, ItemText) else pd.DataFrame()
    if len(user_table.columns):
        user_table = user_table.reindex(range(len(user_ids)))
    full = Interactions(users=users, items=items, ratings=np.ones(len(users), np.float32), timestamps=ts,
                        user_ids=np.asarray(user_ids, dtype=object), item_ids=current.item_ids_,
                        item_table=item_table, user_table=user_table, name="retrain")
    trusted = Interactions(users=t_users, items=t_items, ratings=np.ones(len(t_users), np.float32),
                           timestamps=np.zeros(len(t_users), np.int64), user_ids=full.user_ids,
                           item_ids=full.item_ids, item_table=item_table, user_table=user_table, name="trusted")
    return _Merged(full, np.flatnonzero(~in_trusted), np.arange(len(coo.data), len(users)), trusted,
                   int(in_trusted.sum()))


def _fit(current: Recommender, train: Interactions, cfg: RetrainConfig,
         train_config: dict[str, Any] | None) -> Recommender:
    """A model of the current one's class and settings fitted on ``train``, fine-tuned from the
    current weights where the model trains (``epochs`` / ``lr`` of ``cfg``)."""
    params = current.get_params()
    if "config" in params:
        tc = {**TrainConfig.from_any(params["config"]).to_dict(), "epochs": cfg.epochs, "progress": False,
              "run_dir": None, "seed": cfg.seed, **(train_config or {})}
        if cfg.lr is not None:
            tc["lr"] = cfg.lr
        params["config"] = tc
    return type(current)(**params).fit(train, init_from=current if "config" in params else None)


def _compare(result: RetrainResult, which: str, baseline: Any, candidate: Recommender, task: EvalTask,
             metric: str) -> None:
    """``metric`` of ``baseline`` (the current model, padded, or a control) and ``candidate`` on
    ``task`` into ``result`` (``which``: "newest" or "trusted"), with the paired gain's standard error."""
    spec = parse_metric(metric)
    before, after = (evaluate_task(m, task, [spec]) for m in (baseline, candidate))
    scores = float(before.summary()[spec.label]), float(after.summary()[spec.label])
    if which == "newest":
        result.current_score, result.candidate_score = scores
    else:
        result.trusted_current_score, result.trusted_candidate_score = scores
    result.standard_errors[which] = paired_gap(before.per_user[spec.label], after.per_user[spec.label])[1]


def _load_current(store: ModelStore, events: EventStore) -> Recommender:
    """The served version, with the items added through the API when the model can take them."""
    current = Recommender.load(store.current_path())
    stored_items = events.items()
    if len(stored_items) and isinstance(current, AddsItems):
        unknown = stored_items[~stored_items["item"].isin([str(i) for i in current.item_ids_.tolist()])]
        if len(unknown):
            current.add_items(unknown.reset_index(drop=True))
    return current


def retrain(store: ModelStore, events: EventStore, cfg: RetrainConfig | None = None,
            train_config: dict[str, Any] | None = None) -> RetrainResult:
    """Run one retraining round on ``store`` with the events in ``events``; see the module doc."""
    cfg = cfg or RetrainConfig()
    cfg.validate()
    start = time.perf_counter()
    if store.single:
        raise ConfigError(f"{store.root} is a single model directory; retraining promotes versions into a store. "
                          f"Create one with: lmrec publish {store.root} STORE_DIR")
    version, current = store.current(), _load_current(store, events)
    # fixed before any event is read; with the gate off a stored holdout is still never trained on
    holdout = fixed_holdout(store, current, cfg) if cfg.trusted_gate else store.load_holdout()
    through = int(current.manifest_.get("metrics", {}).get("events_through_id", 0))
    raw = events.events(after_id=through)
    trusted_keys = set(pair_keys(holdout.users, holdout.items)) if holdout is not None else set()
    usable, counts = round_events(raw, current, cfg, trusted_keys)
    suspects = suspect_new_users(current, usable, cfg) if cfg.detect_fakes else Suspects()
    usable = usable[~usable["user"].isin(set(suspects.users))].reset_index(drop=True)
    counts["suspect_events"] = suspects.events
    result = RetrainResult(False, "", version, metric=cfg.metric, events=counts, suspects=suspects.summary(),
                           flagged=popularity_jumps(usable, current, cfg))
    if len(usable) < cfg.min_events:
        return _done(result, f"only {len(usable)} usable new events (need {cfg.min_events}); keeping {version}", start)

    n_hold = max(1, math.ceil(cfg.holdout * len(usable)))
    merged = _merge(current, usable, holdout)
    data, hold_rows = merged.data, merged.event_rows[-n_hold:]
    train = _dedupe(data.subset(np.setdiff1d(np.r_[merged.old_rows, merged.event_rows], hold_rows)))
    held = data.subset(hold_rows)
    newest = held.subset(held.users < current.n_users_)  # users the current model knows
    counts.update(train_events=len(usable) - n_hold, holdout=int(len(newest)), trusted_holdout=len(merged.trusted))
    if len(newest) == 0:
        return _done(result, f"none of the {n_hold} newest events comes from a user the current model knows; "
                             f"nothing to compare on, keeping {version}", start)
    if cfg.trusted_gate and holdout is not None and len(merged.trusted) == 0:
        return _done(result, f"the trusted holdout ({holdout.source}) holds no pair of a user and an item the "
                             f"current model knows; nothing trusted to compare on, keeping {version}", start)

    candidate = _fit(current, train, cfg, train_config)
    spec = parse_metric(cfg.metric)
    items = np.arange(current.n_items_)
    padded = _Padded(current, candidate.n_items_)
    task = EvalTask.build(train, newest, seen=train.concat(merged.trusted), candidates=items)
    _compare(result, "newest", padded, candidate, task, cfg.metric)
    if cfg.trusted_gate and holdout is not None:
        _trusted_scores(result, current, candidate, train, held, merged, holdout, cfg, train_config)
    if cfg.exposure_check:
        result.exposure = exposure_check(current, candidate, merged.trusted.to_csr(), cfg, int(spec.k or 10))
    refusals = gate_refusals(result, cfg, len(newest), len(merged.trusted))
    if refusals:
        result.refused_by = list(refusals)
        return _done(result, "; ".join(refusals.values()) + f"; keeping {version}", start)
    through_id = int(usable["id"].iloc[-n_hold:].min()) - 1  # held-out events are learnt next round
    return _done(result, _promote(store, candidate, result, cfg, through_id), start)


def _promote(store: ModelStore, candidate: Recommender, result: RetrainResult, cfg: RetrainConfig,
             through_id: int) -> str:
    """Publish ``candidate`` as the store's next CURRENT version; returns the reason to report."""
    label = parse_metric(cfg.metric).label
    metrics: dict[str, Any] = {f"holdout_{label}": result.candidate_score, "events_through_id": through_id,
                               "previous_version": result.current_version}
    if result.trusted_candidate_score is not None:
        metrics[f"trusted_{label}"] = result.trusted_candidate_score
    name = store.publish(candidate, metrics=metrics)
    result.promoted, result.candidate_version = True, name
    trusted = result.trusted_current_score is not None
    where = "both holdouts" if trusted else "the newest events (no trusted holdout compared)"
    shown = "" if not trusted else \
        f", {result.trusted_current_score:.4f} -> {result.trusted_candidate_score:.4f} on the trusted holdout"
    return (f"candidate not worse than current - margin {cfg.margin} (within {cfg.noise_z} standard errors) on "
            f"{where}: {label} {result.current_score:.4f} -> {result.candidate_score:.4f} on the newest "
            f"events{shown}; promoted {name}")


def _trusted_scores(result: RetrainResult, current: Recommender, candidate: Recommender, train: Interactions,
                    held: Interactions, merged: _Merged, holdout: Holdout, cfg: RetrainConfig,
                    train_config: dict[str, Any] | None) -> None:
    """Candidate and current (or a control, when the current model trained on the trusted pairs)
    on the trusted holdout; the round's newest events count as seen."""
    task = EvalTask.build(train, merged.trusted, seen=train.concat(held), candidates=np.arange(current.n_items_))
    if merged.overlap:
        old = _dedupe(merged.data.subset(merged.old_rows))
        baseline: Any = _fit(current, old, cfg, train_config)
        kind = (f"control: the current model's settings fitted without the round's events (the current model "
                f"trained on {merged.overlap} of the trusted pairs)")
    else:
        baseline, kind = _Padded(current, candidate.n_items_), "current"
    _compare(result, "trusted", baseline, candidate, task, cfg.metric)
    result.trusted = {"source": holdout.source, "pairs": len(merged.trusted), "baseline": kind}


def _done(result: RetrainResult, reason: str, start: float) -> RetrainResult:
    result.reason, result.seconds = reason, time.perf_counter() - start
    return result


def _dedupe(data: Interactions) -> Interactions:
    """Keep the latest of repeated (user, item) pairs."""
    order = np.lexsort((data.timestamps, data.items, data.users))
    pair = data.users[order] * np.int64(data.n_items) + data.items[order]
    last = np.r_[pair[1:] != pair[:-1], True]
    return data.subset(np.sort(order[last]))
