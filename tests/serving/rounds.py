"""Retraining rounds on MovieLens 100K for the gate's tests: an honest round and an average attack.

The world: 60 users held back as the future's new users; the others split per user by time
(80 / 10 / 10). EASE is fitted on the training part (published with the validation part as the
store's fixed holdout, or without one); the test part is what the known users do next. The
attack's 6 targets have 120-200 training users: enough that about 230 events each stay under the
popularity-jump check in a round of 15,000 events.

* :func:`honest_round` -- new users' real interactions and known users' next real ones, in time order;
* :func:`average_attack` -- the same number of events: a little of that real traffic, then fake
  users whose events follow item popularity plus a few of the target items (spread so that no
  target trips the popularity-jump check), pushes of the targets from known user ids, and last a
  burst of known users clicking the targets, so the newest events reward the poisoned candidate.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.data import Interactions, load_ml100k, save_split, temporal_split
from lmrec.models import EASE

N_FUTURE = 60  # users held back: they arrive as new users in the honest round
ROUND = 15000  # events in either round


@dataclass
class World:
    """A fitted model, its split, and the traffic rounds are drawn from (raw ids)."""

    model_dir: Path
    split_dir: Path
    known: Interactions  # the known users' train part (what the model learnt)
    test: pd.DataFrame  # known users' next interactions: user, item (raw), timestamp
    future: pd.DataFrame  # held-back users' interactions: user, item (raw), timestamp
    targets: list[str]  # the attack's target items (raw ids)


def build_world(data_dir: Path, root: Path, seed: int = 7, target_pop: tuple[int, int] = (120, 200)) -> World:
    """MovieLens 100K from ``data_dir``; the split and the model are written under ``root``."""
    data = load_ml100k(data_dir / "ml-100k")
    frame = pd.DataFrame({"user": data.user_ids[data.users], "item": data.item_ids[data.items],
                          "timestamp": data.timestamps})
    rng = np.random.default_rng(seed)
    future_users = rng.choice(np.unique(frame["user"]), N_FUTURE, replace=False)
    future = frame[frame["user"].isin(future_users)]
    split = temporal_split(Interactions.from_frame(frame[~frame["user"].isin(future_users)], name="ml-100k-known"),
                           (0.8, 0.1, 0.1))
    split_dir = save_split(split, root / "split")
    model_dir = EASE(lam=300.0).fit(split.train).save(root / "ease")
    t = split.test
    test = pd.DataFrame({"user": t.user_ids[t.users], "item": t.item_ids[t.items], "timestamp": t.timestamps})
    return World(model_dir, split_dir, split.train, test, future, _targets(split.train, rng, target_pop))


def _targets(train: Interactions, rng: np.random.Generator, pop_range: tuple[int, int], n: int = 6) -> list[str]:
    """Items with ``pop_range`` training users: popular enough for room under the jump check."""
    pop = train.item_popularity()
    pool = np.flatnonzero((pop >= pop_range[0]) & (pop <= pop_range[1]))
    return [str(train.item_ids[i]) for i in rng.choice(pool, n, replace=False)]


def _events(frame: pd.DataFrame) -> list[dict[str, str]]:
    return [{"user": str(u), "item": str(i)} for u, i in zip(frame["user"], frame["item"])]


def honest_round(world: World, n: int = ROUND, seed: int = 1) -> list[dict[str, str]]:
    """``n`` real events in time order: new users' interactions and known users' next ones."""
    both = pd.concat([world.future, world.test]).sort_values("timestamp", kind="stable")
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(both), min(n, len(both)), replace=False))
    return _events(both.iloc[keep])


def average_attack(world: World, n: int = ROUND, fakes: int = 300, filler: int = 40, per_fake: int = 3,
                   pushes: int = 40, burst: int = 40, seed: int = 2) -> list[dict[str, str]]:
    """``n`` events: real traffic first, then ``fakes`` fake users (``filler`` items drawn by training
    popularity + ``per_fake`` targets each, round robin), ``pushes`` known users clicking each
    target, and last a ``burst`` of other known users clicking each target."""
    rng = np.random.default_rng(seed)
    train = world.known
    pop = train.item_popularity().astype(np.float64)
    targets = world.targets
    target_idx = set(train.item_index(np.asarray([int(t) for t in targets])).tolist())
    p = pop.copy()
    p[list(target_idx)] = 0
    p /= p.sum()
    fake: list[dict[str, str]] = []
    for f in range(fakes):
        items = rng.choice(train.n_items, filler, replace=False, p=p)
        mine = [targets[(f * per_fake + j) % len(targets)] for j in range(per_fake)]
        chosen = [str(train.item_ids[i]) for i in items] + mine
        rng.shuffle(chosen)
        fake += [{"user": f"member{f:04d}", "item": item} for item in chosen]
    users = [str(u) for u in rng.permutation(train.user_ids)]
    push = [{"user": users[j * len(targets) + t], "item": target}
            for j in range(pushes) for t, target in enumerate(targets)]
    start = pushes * len(targets)
    last = [{"user": users[start + j * len(targets) + t], "item": target}
            for j in range(burst) for t, target in enumerate(targets)]
    real = honest_round(world, n - len(fake) - len(push) - len(last), seed=seed + 1)
    return real + fake + push + last
