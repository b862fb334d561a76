"""Perturbations of training interactions, for robustness studies: noise and poisoning attacks.

Each perturbation is deterministic for a seed, leaves the id maps of the existing users and
items unchanged, and returns what it did (:class:`Perturbed`), so a study can say exactly what
changed:

* :func:`add_false_positives` -- random (user, item) pairs the user never had (clicks by mistake);
* :func:`drop_interactions` -- a random share of interactions removed (missing feedback);
* :func:`corrupt_ratings` -- a random share of ratings set outside the rating scale (what
  :mod:`lmrec.data.cleaning` is for);
* :func:`inject_fake_users` -- shilling attacks by new users pushing target items (Lam & Riedl
  2004; Mobasher et al. 2007): ``random`` (filler items uniform, ratings around the global
  mean), ``average`` (filler items uniform, each rated near its own mean) and ``bandwagon``
  (the most popular items plus random fillers). Fake users rate the targets at the top of the
  scale. On implicit data (every rating 1) random and average attacks differ in nothing a
  binary model reads.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lmrec.data.interactions import Interactions
from lmrec.errors import ConfigError, check_choice

ATTACKS = ("random", "average", "bandwagon")


@dataclass(frozen=True)
class Perturbed:
    """Perturbed data and what changed: ``added`` marks the rows that were not in the input (a
    bool mask over the output), ``removed`` the input rows that are gone (a bool mask over the
    input), ``changed`` the rows whose rating changed (over the output); ``fake_users`` the
    indices of injected users."""

    data: Interactions
    added: np.ndarray
    removed: np.ndarray
    changed: np.ndarray
    fake_users: np.ndarray


def _share(name: str, value: float, high: float = 1.0) -> None:
    if not 0 <= value <= high:
        raise ConfigError(f"The '{name}' parameter must be a share in [0, {high}]; got {value!r}.")


def _timestamps(data: Interactions, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """Times for new rows, uniform over the data's time span (None when the data has none)."""
    if data.timestamps is None:
        return None
    if not len(data):
        return np.zeros(n, dtype=np.int64)
    return rng.integers(int(data.timestamps.min()), int(data.timestamps.max()) + 1, n).astype(np.int64)


def _append(data: Interactions, users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
            timestamps: np.ndarray | None) -> Interactions:
    return replace(data, users=np.concatenate([data.users, users.astype(np.int64)]),
                   items=np.concatenate([data.items, items.astype(np.int64)]),
                   ratings=np.concatenate([data.ratings, ratings.astype(np.float32)]),
                   timestamps=None if data.timestamps is None else np.concatenate([data.timestamps, timestamps]))


def add_false_positives(data: Interactions, share: float, seed: int = 0) -> Perturbed:
    """Add ``round(share * len(data))`` distinct (user, item) pairs absent from ``data``: users
    drawn among those with interactions, items uniform over the catalogue; rating: the data's
    median rating; time: uniform over the data's span."""
    _share("share", share, high=10.0)
    rng = np.random.default_rng(seed)
    n = int(round(share * len(data)))
    present = np.unique(data.users * data.n_items + data.items)
    free = data.n_users * data.n_items - len(present)
    if n > free:
        raise ConfigError(f"add_false_positives: {n} new pairs asked for, but only {free} (user, item) pairs are free.")
    users_pool = np.unique(data.users)
    chosen = np.zeros(0, dtype=np.int64)
    while len(chosen) < n:  # draw, drop pairs already present or drawn, repeat for the rest
        draw = rng.choice(users_pool, 2 * (n - len(chosen)) + 16) * data.n_items \
            + rng.integers(0, data.n_items, 2 * (n - len(chosen)) + 16)
        draw = draw[~np.isin(draw, present) & ~np.isin(draw, chosen)]
        _, first = np.unique(draw, return_index=True)
        chosen = np.concatenate([chosen, draw[np.sort(first)][: n - len(chosen)]])
    rating = float(np.median(data.ratings)) if len(data) else 1.0
    out = _append(data, chosen // data.n_items, chosen % data.n_items, np.full(n, rating), _timestamps(data, n, rng))
    added = np.r_[np.zeros(len(data), bool), np.ones(n, bool)]
    return Perturbed(out, added, np.zeros(len(data), bool), np.zeros(len(out), bool), np.zeros(0, np.int64))


def drop_interactions(data: Interactions, share: float, seed: int = 0) -> Perturbed:
    """Remove ``round(share * len(data))`` interactions chosen uniformly at random."""
    _share("share", share)
    rng = np.random.default_rng(seed)
    removed = np.zeros(len(data), bool)
    removed[rng.choice(len(data), int(round(share * len(data))), replace=False)] = True
    out = data.subset(~removed)
    return Perturbed(out, np.zeros(len(out), bool), removed, np.zeros(len(out), bool), np.zeros(0, np.int64))


def corrupt_ratings(data: Interactions, share: float, scale: tuple[float, float], seed: int = 0) -> Perturbed:
    """Set ``round(share * len(data))`` random ratings outside ``scale`` = (low, high): half of
    them below ``low`` (0 to 1 scale-width under it), half above ``high`` (typing errors, unit
    mix-ups); the rows stay."""
    _share("share", share)
    low, high = scale
    if not low < high:
        raise ConfigError(f"corrupt_ratings: scale must be (low, high) with low < high; got {scale!r}.")
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(data), int(round(share * len(data))), replace=False)
    width = high - low
    offsets = rng.uniform(0.01, 1.0, len(rows)) * width
    values = np.where(np.arange(len(rows)) % 2 == 0, low - offsets, high + offsets)
    ratings = data.ratings.copy()
    ratings[rows] = values.astype(np.float32)
    changed = np.zeros(len(data), bool)
    changed[rows] = True
    return Perturbed(replace(data, ratings=ratings), np.zeros(len(data), bool), np.zeros(len(data), bool), changed,
                     np.zeros(0, np.int64))


def inject_fake_users(data: Interactions, attack: str, targets: np.ndarray, share: float, filler: int = 30,
                      seed: int = 0, popular: int = 10, scale: tuple[float, float] | None = None) -> Perturbed:
    """Append ``round(share * n_users)`` fake users (raw ids after the largest integer id, or
    ``fake-0``, ``fake-1``, ... for string ids), each with
    the ``targets`` (item indices) at the top rating and ``filler`` other items chosen by ``attack``
    (see the module docstring; ``popular``: the bandwagon's most popular items, all rated at the
    top). ``scale``: the rating scale (default: the data's min and max). Times lie after the
    data's last one, so temporal splits put them in training."""
    check_choice("inject_fake_users", "attack", attack, list(ATTACKS))
    _share("share", share)
    targets = np.unique(np.asarray(targets, dtype=np.int64))
    if not len(targets) or targets.min() < 0 or targets.max() >= data.n_items:
        raise ConfigError(f"inject_fake_users: targets must be item indices in [0, {data.n_items}); got {targets.tolist()}.")
    rng = np.random.default_rng(seed)
    n_fake = int(round(share * data.n_users))
    low, high = scale if scale is not None else (float(data.ratings.min()), float(data.ratings.max()))
    mean, std = float(data.ratings.mean()), float(data.ratings.std())
    item_sum = np.bincount(data.items, weights=data.ratings, minlength=data.n_items)
    item_n = np.bincount(data.items, minlength=data.n_items)
    item_mean = np.where(item_n > 0, item_sum / np.maximum(item_n, 1), mean)
    head = np.setdiff1d(np.argsort(-item_n, kind="stable")[:popular + len(targets)], targets)[:popular]
    others = np.setdiff1d(np.arange(data.n_items), targets)
    users, items, ratings = [], [], []
    for f in range(n_fake):
        base = head if attack == "bandwagon" else np.zeros(0, np.int64)
        pool = np.setdiff1d(others, base)
        fill = rng.choice(pool, min(filler, len(pool)), replace=False)
        if attack == "average":
            fill_r = rng.normal(item_mean[fill], std / 2)
        else:
            fill_r = rng.normal(mean, std, len(fill))
        chosen = np.concatenate([targets, base, fill])
        r = np.concatenate([np.full(len(targets) + len(base), high), fill_r])
        users.append(np.full(len(chosen), data.n_users + f))
        items.append(chosen)
        ratings.append(np.clip(r, low, high))
    new_users = np.concatenate(users) if users else np.zeros(0, np.int64)
    start = int(data.timestamps.max()) + 1 if data.timestamps is not None and len(data) else 0
    times = None if data.timestamps is None else start + np.arange(len(new_users), dtype=np.int64)
    if np.issubdtype(data.user_ids.dtype, np.integer):  # new raw ids after the largest
        top = int(data.user_ids.max()) + 1 if len(data.user_ids) else 0
        fake_ids = np.arange(top, top + n_fake, dtype=data.user_ids.dtype)
    else:
        fake_ids = np.array([f"fake-{f}" for f in range(n_fake)], dtype=data.user_ids.dtype if
                            data.user_ids.dtype.kind == "O" else object)
    user_ids = np.concatenate([data.user_ids, fake_ids])
    user_table = data.user_table
    if len(user_table.columns):
        user_table = pd.concat([user_table, pd.DataFrame(index=range(data.n_users, data.n_users + n_fake))])
    grown = replace(data, user_ids=user_ids, user_table=user_table)
    out = _append(grown, new_users, np.concatenate(items) if items else new_users,
                  np.concatenate(ratings) if ratings else np.zeros(0), times)
    added = np.r_[np.zeros(len(data), bool), np.ones(len(new_users), bool)]
    return Perturbed(out, added, np.zeros(len(data), bool), np.zeros(len(out), bool),
                     np.arange(data.n_users, data.n_users + n_fake))
