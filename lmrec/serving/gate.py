"""The retraining gate's checks: evidence for promotion that the event stream cannot forge.

Whoever can ``POST /events`` writes the newest events, so a gate that only scores the newest
events can be graded by an attacker (a burst of plausible clicks on the items they pushed, sent
last). These checks rest on what the stream cannot write or cannot hide:

* :func:`fixed_holdout` -- the store's trusted holdout: a split's validation interactions stored by
  ``lmrec publish MODEL STORE --holdout SPLIT_DIR``, or else a seeded per-user sample of the current
  model's training interactions (all older than the round), saved in the store before any event
  of the round is read, so later rounds reuse it;
* :func:`round_events` -- a round's positive events on known items, each (user, item) pair once
  (the first received), the trusted pairs left out, per-user and per-item caps;
* :func:`popularity_jumps` -- items whose event count in the round jumps past what their training
  popularity predicts;
* :func:`suspect_new_users` -- DegSim/RDMA (:mod:`lmrec.data.detect`) on the round's new users, the
  normal range taken from users the current model already knows;
* :func:`reach` and :func:`exposure_jumps` -- how many users' top-k each item enters under the
  current model and under the candidate: an item whose reach jumps is held for an operator;
* :func:`paired_gap` -- the candidate's mean per-user gain over the current model on a holdout,
  and its standard error, which decide "not worse";
* :func:`refusals` -- which checks refuse a round's candidate, and why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from lmrec.data.detect import detect_fake_users
from lmrec.data.interactions import Interactions
from lmrec.models.base import Recommender
from lmrec.ranking import top_k
from lmrec.serving.retrain_config import RetrainConfig, RetrainResult
from lmrec.storage.versions import Holdout, ModelStore


# ----------------------------------------------------------------------------- the trusted holdout
def fixed_holdout(store: ModelStore, current: Recommender, cfg: RetrainConfig) -> Holdout:
    """The store's holdout; when it has none, sample one from ``current``'s training data and save
    it in the store first (so it is fixed before this round's events are read, and reused)."""
    found = store.load_holdout()
    if found is not None:
        return found
    holdout = sample_holdout(current, cfg.trusted_users, cfg.trusted_per_user, cfg.seed, cfg.trusted_recent)
    holdout = Holdout(holdout.users, holdout.items, f"sampled from {store.current()}'s training interactions",
                      holdout.info)
    store.save_holdout(holdout, overwrite=False)
    return holdout


def sample_holdout(model: Recommender, n_users: int, per_user: int, seed: int, recent: float = 1.0) -> Holdout:
    """``per_user`` training interactions of each of ``n_users`` users (seeded), drawn among users
    with more than ``per_user`` so everyone keeps a history, from each user's most ``recent`` share
    of them; raw ids.

    Why recent: the holdout is older than every round, and a candidate that learns what users do
    now can lose on what they did long ago (on MovieLens 100K, an honest round scored 0.006 NDCG@10
    lower than its control on a uniform sample of old interactions, and 0.001-0.003 higher on a
    sample of each user's newest fifth).
    """
    m = model.train_matrix_.tocsr()
    counts = np.diff(m.indptr)
    eligible = np.flatnonzero(counts > per_user)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(eligible, min(n_users, len(eligible)), replace=False))
    users, items = [], []
    for u in chosen:
        row = m.indices[m.indptr[u]: m.indptr[u + 1]]
        recency = m.data[m.indptr[u]: m.indptr[u + 1]]  # larger is more recent (Interactions.to_csr(order=True))
        pool = row[np.argsort(-recency, kind="stable")[: max(per_user, int(np.ceil(recent * len(row))))]]
        users.append(np.full(per_user, u))
        items.append(np.sort(rng.choice(pool, per_user, replace=False)))
    users_i = np.concatenate(users) if users else np.zeros(0, np.int64)
    items_i = np.concatenate(items) if items else np.zeros(0, np.int64)
    return Holdout(model.user_ids_[users_i], model.item_ids_[items_i], "sample",
                   {"seed": seed, "per_user": per_user, "recent": recent, "users": int(len(chosen))})


def pair_keys(users: Any, items: Any) -> np.ndarray:
    """One string per (user, item) pair of raw ids, as events name them: ``"user\\x00item"``."""
    return np.asarray([f"{u}\x00{i}" for u, i in zip(np.asarray(users).tolist(), np.asarray(items).tolist())],
                      dtype=object)


# ----------------------------------------------------------------------------- the round's events
def round_events(raw: pd.DataFrame, current: Recommender, cfg: RetrainConfig,
                 trusted: set[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The round's usable events, in received order, and what was dropped at each step.

    Positive types at or above ``min_value``, on items the current model knows; each (user, item)
    pair once (the first received, so repeating an event neither fills a cap nor moves it later);
    pairs of the trusted holdout left out (training on them would grade the candidate with its own
    answers; ``trusted``: their :func:`pair_keys`); then the caps.
    """
    keep = raw["type"].isin(cfg.positive_types) & (raw["value"] >= cfg.min_value)
    fresh = raw[keep].sort_values(["received", "id"], kind="stable").reset_index(drop=True)
    known_items = {str(i) for i in current.item_ids_.tolist()}
    known = fresh[fresh["item"].isin(known_items)]
    distinct = known[~known.duplicated(["user", "item"], keep="first")]
    in_holdout = np.fromiter((key in trusted for key in pair_keys(distinct["user"], distinct["item"])), bool,
                             count=len(distinct))
    outside = distinct[~in_holdout]
    usable = capped(outside.reset_index(drop=True), cfg)
    counts = {"read": len(raw), "positive": len(fresh), "unknown_items": len(fresh) - len(known),
              "duplicates": len(known) - len(distinct), "trusted_pairs": len(distinct) - len(outside),
              "over_caps": len(outside) - len(usable)}
    return usable, counts


def capped(events: pd.DataFrame, cfg: RetrainConfig) -> pd.DataFrame:
    """The first ``max_user_events`` events of each user and ``max_item_events`` of each item
    (events are in received order, one per (user, item) pair)."""
    keep = (events.groupby("user").cumcount() < cfg.max_user_events).to_numpy()
    kept = events[keep]
    return kept[(kept.groupby("item").cumcount() < cfg.max_item_events).to_numpy()].reset_index(drop=True)


def popularity_jumps(events: pd.DataFrame, current: Recommender, cfg: RetrainConfig) -> list[dict[str, Any]]:
    """Items whose distinct users in this round reach ``jump_min`` and ``jump_factor`` times the count
    their training popularity predicts, (count + 1) / (interactions + items) of the round's pairs;
    largest first, accepted items left out."""
    counts = events.drop_duplicates(["user", "item"])["item"].value_counts()
    n_pairs = int(counts.sum())
    train_counts = np.asarray(current.train_matrix_.sum(axis=0)).reshape(-1)
    by_raw = {str(raw): i for i, raw in enumerate(current.item_ids_.tolist())}
    total = train_counts.sum() + len(train_counts)
    flagged = []
    for item, n in counts.items():
        index = by_raw.get(str(item))
        share = (train_counts[index] + 1 if index is not None and index < len(train_counts) else 1) / total
        expected = n_pairs * share
        if n >= cfg.jump_min and n >= cfg.jump_factor * expected and str(item) not in cfg.accept_jumps:
            flagged.append({"item": str(item), "events": int(n), "expected": round(float(expected), 2)})
    return sorted(flagged, key=lambda f: -f["events"])


# ----------------------------------------------------------------------------- fake new users
@dataclass
class Suspects:
    """New users of a round that the detector flagged: ``checked`` new users were scored."""

    checked: int = 0
    users: list[str] = field(default_factory=list)
    events: int = 0

    def summary(self, shown: int = 20) -> dict[str, Any]:
        return {"checked": self.checked, "flagged": len(self.users), "events": self.events,
                "users": self.users[:shown]}


def suspect_new_users(current: Recommender, events: pd.DataFrame, cfg: RetrainConfig) -> Suspects:
    """DegSim/RDMA on the round's new users (users the current model does not know).

    The reference is a seeded sample of up to ``detect_reference`` known users with their training
    rows: their statistics, among one another, set the median and MAD; new users are scored
    against the reference and the other new users (binary rows: events carry no comparable rating).
    """
    known = {str(u): i for i, u in enumerate(current.user_ids_.tolist())}
    new = events[~events["user"].isin(known)]
    new_ids = list(dict.fromkeys(new["user"].tolist()))
    if not new_ids:
        return Suspects()
    m = current.train_matrix_.tocsr()
    active = np.flatnonzero(np.diff(m.indptr) > 0)
    rng = np.random.default_rng(cfg.seed)
    ref = np.sort(rng.choice(active, min(cfg.detect_reference, len(active)), replace=False))
    ref_rows = m[ref].tocoo()
    imap = {str(raw): i for i, raw in enumerate(current.item_ids_.tolist())}
    umap = {u: len(ref) + j for j, u in enumerate(new_ids)}
    users = np.r_[ref_rows.row, new["user"].map(umap).to_numpy()].astype(np.int64)
    items = np.r_[ref_rows.col, new["item"].map(imap).to_numpy()].astype(np.int64)
    data = Interactions(users=users, items=items, ratings=np.ones(len(users), np.float32), timestamps=None,
                        user_ids=np.arange(len(ref) + len(new_ids)), item_ids=current.item_ids_, name="detect")
    found = detect_fake_users(data, threshold=cfg.detect_threshold, k=cfg.detect_k, reference=np.arange(len(ref)))
    flagged = [u for j, u in enumerate(new_ids) if found.flagged[len(ref) + j]]
    return Suspects(len(new_ids), flagged, int(new["user"].isin(set(flagged)).sum()))


# ----------------------------------------------------------------------------- exposure
def reach(model: Recommender, history: sp.csr_matrix, seen: sp.csr_matrix, users: np.ndarray, k: int,
          n_items: int, batch: int = 1024) -> np.ndarray:
    """(n_items,) how many of ``users`` have each item in their top-``k`` (seen items removed);
    ``history`` and ``seen`` rows are per user index; items beyond the model's own are never listed."""
    counts = np.zeros(n_items, dtype=np.int64)
    width = model.n_items_
    for lo in range(0, len(users), batch):
        part = users[lo: lo + batch]
        scores = torch.full((len(part), n_items), -torch.inf)
        scores[:, :width] = model.score_rows(part, sp.csr_matrix(history[part][:, :width])).float()
        top, top_scores = top_k(scores, k, sp.csr_matrix(seen[part]))  # NaN and seen items never listed
        listed = top[np.isfinite(top_scores)]
        np.add.at(counts, listed, 1)
    return counts


def exposure_check(current: Recommender, candidate: Recommender, trusted: sp.csr_matrix, cfg: RetrainConfig,
                   k: int) -> list[dict[str, Any]]:
    """Reach of each item in the top-``k`` lists of a seeded sample of known users, current model
    (its own history) against candidate (its new one); ``trusted`` (the candidate's users x items)
    pairs count as seen in both."""
    users = sample_users(current.n_users_, cfg.exposure_users, cfg.seed)
    n_items = candidate.n_items_
    before_hist = sp.csr_matrix(current.train_matrix_, shape=(current.n_users_, current.n_items_))
    wide = sp.hstack([before_hist, sp.csr_matrix((current.n_users_, n_items - current.n_items_))])
    before = reach(current, before_hist, sp.csr_matrix(wide + trusted[: current.n_users_]), users, k, n_items)
    after = reach(candidate, candidate.train_matrix_, sp.csr_matrix(candidate.train_matrix_ + trusted), users, k,
                  n_items)
    return exposure_jumps(before, after, candidate.item_ids_, len(users), cfg)


def exposure_jumps(before: np.ndarray, after: np.ndarray, item_ids: np.ndarray, users: int,
                   cfg: RetrainConfig) -> list[dict[str, Any]]:
    """Items whose reach under the candidate (``after``) gains at least ``exposure_gain`` of the
    ``users`` sampled and reaches ``exposure_factor`` times (reach under the current model + 1);
    largest gain first, accepted items left out.

    Both conditions, as for event counts: the share keeps items of a few users' lists from being
    flagged for noise, the factor keeps popular items whose reach grows a little from being flagged.
    """
    gain = after - before
    flagged = []
    for i in np.flatnonzero((gain >= cfg.exposure_gain * users) & (after >= cfg.exposure_factor * (before + 1))):
        raw = str(item_ids[i])
        if raw not in cfg.accept_jumps:
            flagged.append({"item": raw, "before": int(before[i]), "after": int(after[i]), "users": int(users)})
    return sorted(flagged, key=lambda f: f["before"] - f["after"])


def paired_gap(current: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(mean, standard error) of the per-user differences candidate - current (aligned arrays);
    the error is 0 for fewer than two users."""
    diff = np.asarray(candidate, np.float64) - np.asarray(current, np.float64)
    diff = diff[np.isfinite(diff)]  # users without a value (an AUC with no negative) do not count
    if not len(diff):
        return 0.0, 0.0
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return float(diff.mean()), se


def sample_users(n: int, size: int, seed: int) -> np.ndarray:
    """A seeded, sorted sample of ``size`` of the user indices ``0..n-1`` (all when fewer)."""
    return np.sort(np.random.default_rng(seed).choice(n, min(size, n), replace=False))


# ----------------------------------------------------------------------------- the verdict
def refusals(result: RetrainResult, cfg: RetrainConfig, n_newest: int, n_trusted: int) -> dict[str, str]:
    """Check name -> why it refuses the candidate; empty when every check passes.

    On a holdout the candidate is worse when it falls short of ``current - margin`` by more than
    ``noise_z`` standard errors of the paired per-user gain (the noise of the holdout itself).
    """
    label, out = cfg.metric, {}
    if result.flagged:
        named = ", ".join(f"{f['item']} ({f['events']} events, {f['expected']} expected)" for f in result.flagged[:5])
        out["popularity_jump"] = (f"popularity jump in this round's events: {named}; review them, then accept "
                                  f"with --accept-jump ITEM")
    if result.exposure:
        named = ", ".join(f"{f['item']} (in {f['before']} -> {f['after']} of {f['users']} users' top lists)"
                          for f in result.exposure[:5])
        out["exposure_jump"] = (f"reach jump in the candidate's top-k lists: {named}; review them, then accept "
                                f"with --accept-jump ITEM")
    out.update(trusted_refusal(result, cfg, n_trusted))
    cur, cand = result.current_score, result.candidate_score
    allowed = cfg.margin + cfg.noise_z * result.standard_errors.get("newest", 0.0)
    if cand == 0 and cur == 0:
        out["newest_no_signal"] = (f"both models score {label} 0 on the {n_newest} held-out events: nothing "
                                   f"shows the candidate is not worse")
    elif cand is not None and cur is not None and cand < cur - allowed:
        out["newest_events"] = (f"candidate {label} {cand:.4f} < current {cur:.4f} on the {n_newest} newest events, "
                                f"more than the {allowed:.4f} allowed (margin {cfg.margin} + {cfg.noise_z} "
                                f"standard errors)")
    return out


def trusted_refusal(result: RetrainResult, cfg: RetrainConfig, n_trusted: int) -> dict[str, str]:
    """The trusted holdout's refusal, if any. The two holdouts disagree when the candidate gains on
    the newest events but is worse on the trusted holdout, or gains beyond the newest events' noise
    and falls short of ``current - margin`` on the trusted holdout at all: a gain that the event
    stream shows and the data it cannot write does not."""
    t_cur, t_cand = result.trusted_current_score, result.trusted_candidate_score
    cur, cand = result.current_score, result.candidate_score
    if t_cur is None or t_cand is None or cur is None or cand is None:
        return {}
    shown = f"{t_cur:.4f} -> {t_cand:.4f} {cfg.metric} on the {n_trusted} pairs of the trusted holdout"
    allowed = cfg.margin + cfg.noise_z * result.standard_errors["trusted"]
    worse = t_cand < t_cur - allowed
    clear_gain = cand - cur > max(0.0, cfg.noise_z * result.standard_errors["newest"])
    if (worse and cand > cur) or (clear_gain and t_cand < t_cur - cfg.margin):
        return {"holdouts_disagree": f"the two holdouts disagree: the candidate gains on the newest events "
                                     f"({cur:.4f} -> {cand:.4f}) but not on the trusted holdout ({shown}); the newest "
                                     f"events are the event stream's to write, the trusted holdout is not"}
    if worse:
        return {"trusted_holdout": f"candidate worse on the trusted holdout: {shown}, more than the {allowed:.4f} "
                                   f"allowed (margin {cfg.margin} + {cfg.noise_z} standard errors)"}
    if t_cur == 0 and t_cand == 0:
        return {"trusted_no_signal": f"both models score 0 ({shown}): nothing shows the candidate is not worse"}
    return {}
