"""Train / validation / test splits, deterministic for a seed, with leakage checks.

Split kinds: per-user random ratio, per-user temporal ratio, leave-last-out, global temporal
(a cutoff on the timeline) and cold-start items. The named protocols of PROTOCOLS.md are
built from these in :mod:`lmrec.data.protocols`.

Rounding of the ratio splits (random, temporal): the shares are cut per user, with floors. A user
with ``n`` interactions gets ``floor(n*r1)`` train rows, ``floor(n*(r1+r2)) - floor(n*r1)``
validation rows and the rest test; with the default 0.8 / 0.1 / 0.1 that is ``floor(0.8n)``,
``floor(0.9n) - floor(0.8n)`` and ``ceil(0.1n)``. Test receives every user's rounding remainder, so
it holds more than 10% of the rows and validation a little less: a user with 25 interactions
gives 20 / 2 / 3, one with 9 gives 7 / 1 / 1, one with 4 gives 3 / 0 / 1. ML-100K split so (P3)
has 79,619 / 9,942 / 10,439 rows, not 80,000 / 10,000 / 10,000; the shorter the histories, the
larger the gap (why ``lmrec data prepare FILE --valid 0.1 --test 0.1`` gives fewer validation than
test rows). The global temporal
split cuts the whole timeline once (floors of ``N*r``), so its parts are within a row of the shares.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from lmrec.data.interactions import Interactions
from lmrec.errors import ConfigError, DataError, LeakageError

HISTORIES = ("train", "train+valid")


@dataclass
class Split:
    """Three interaction sets over the same id maps, plus how they are to be evaluated.

    Attributes
    ----------
    test_history:
        What a model reads as the user's history when scoring test users: ``"train"`` (random
        and ratio splits) or ``"train+valid"`` (leave-one-out sequences, without refitting).
    cold_items:
        Item indices never seen in training (cold-start split), else ``None``.
    eval_requires_history:
        Evaluate only users that have training interactions (global temporal split).
    kind:
        ``"random"``, ``"temporal"``, ``"global_temporal"`` or ``"cold"``; selects the leakage checks.
    """

    train: Interactions
    valid: Interactions
    test: Interactions
    protocol: str
    seed: int | None
    kind: str
    test_history: str = "train"
    cold_items: np.ndarray | None = None
    eval_requires_history: bool = False
    fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def history(self, stage: str) -> Interactions:
        """Interactions a model reads as history when scoring ``stage`` ("valid" or "test")."""
        if stage == "test" and self.test_history == "train+valid":
            return self.train.concat(self.valid)
        return self.train

    def seen(self, stage: str) -> Interactions:
        """Interactions whose items are removed from the ranking of ``stage``."""
        return self.train.concat(self.valid) if stage == "test" else self.train

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test),
                "users": self.n_users, "items": self.n_items}

    def card(self) -> dict[str, Any]:
        """The protocol card: what a reader needs to reproduce the split."""
        return {"protocol": self.protocol, "dataset": self.train.name, "fingerprint": self.fingerprint,
                "seed": self.seed, "kind": self.kind, "test_history": self.test_history,
                "eval_requires_history": self.eval_requires_history, "counts": self.counts(),
                "cold_items": None if self.cold_items is None else int(len(self.cold_items)), **self.extra}

    def check_leakage(self) -> None:
        """Raise :class:`LeakageError` if evaluation data can reach training.

        Checks: identical id maps; no user-item pair of valid/test in train (random and cold
        splits); per user, no training interaction after a test one (temporal); the global
        cutoff (global temporal); no cold item in train or valid (cold).
        """
        for part in (self.valid, self.test):
            if part.n_users != self.n_users or part.n_items != self.n_items:
                raise LeakageError("train, valid and test must share the same id maps.")
        if self.cold_items is not None:
            cold = np.zeros(self.n_items, dtype=bool)
            cold[self.cold_items] = True
            for stage, part in (("train", self.train), ("valid", self.valid)):
                if cold[part.items].any():
                    raise LeakageError(f"cold items appear in {stage}.")
        if self.kind in ("random", "cold"):
            checked = [("valid", self.valid), ("test", self.test)] if self.kind == "random" else [("test", self.test)]
            for stage, part in checked:
                n = _pair_overlap(self.train, part)
                if n:
                    raise LeakageError(f"{n} user-item pairs of {stage} are also in train.")
        if self.kind == "temporal" and self.train.has_timestamps:
            last = np.full(self.n_users, np.iinfo(np.int64).min)
            np.maximum.at(last, self.train.users, self.train.timestamps)
            for stage, part in (("valid", self.valid), ("test", self.test)):
                early = part.timestamps < last[part.users]  # type: ignore[operator]
                if early.any():
                    raise LeakageError(f"{int(early.sum())} {stage} interactions are older than "
                                       "the same user's latest training interaction.")
        if self.kind == "global_temporal":
            t_max = self.train.timestamps.max() if len(self.train) else None  # type: ignore[union-attr]
            for stage, part in (("valid", self.valid), ("test", self.test)):
                if t_max is not None and len(part) and part.timestamps.min() < t_max:  # type: ignore[union-attr]
                    raise LeakageError(f"{stage} has interactions before the training cutoff.")


def _pair_overlap(a: Interactions, b: Interactions) -> int:
    key_a = np.unique(a.users * a.n_items + a.items)
    key_b = b.users * b.n_items + b.items
    return int(np.isin(key_b, key_a).sum())


def _cuts(n: np.ndarray, ratios: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Exact integer cut points ``n*r1`` and ``n*(r1+r2)`` (floors), as in ``8n//10``, ``9n//10``."""
    if len(ratios) != 3 or abs(sum(ratios) - 1) > 1e-9 or min(ratios) < 0:
        raise DataError(f"ratios must be three non-negative numbers summing to 1; got {list(ratios)}.")
    f1 = Fraction(str(ratios[0])).limit_denominator(10_000)
    f2 = f1 + Fraction(str(ratios[1])).limit_denominator(10_000)
    return (n * f1.numerator) // f1.denominator, (n * f2.numerator) // f2.denominator


def _grouped(users: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interactions sorted by ``order`` (already grouped by user): starts, counts, rank within user."""
    u = users[order]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    counts = np.diff(np.r_[starts, len(u)])
    rank = np.arange(len(u)) - np.repeat(starts, counts)
    return starts, counts, rank


def _by_rank(data: Interactions, order: np.ndarray, cut1: np.ndarray, cut2: np.ndarray,
             counts: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c1 = np.repeat(cut1, counts)
    c2 = np.repeat(cut2, counts)
    return order[rank < c1], order[(rank >= c1) & (rank < c2)], order[rank >= c2]


def _make(data: Interactions, parts: tuple[np.ndarray, ...], **kw: Any) -> Split:
    tr, va, te = (data.subset(np.sort(p)) for p in parts)
    return Split(tr, va, te, fingerprint=data.fingerprint(), **kw)


def random_split(data: Interactions, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 2026,
                 protocol: str = "random") -> Split:
    """Per-user random ratio split (RecBole's general setting, PROTOCOLS.md P1).

    One ``Generator(PCG64(seed))``; users in ascending index; a user's items in ascending item
    index are permuted with ``rng.permutation(n)``; the first ``floor(n*r1)`` go to train, the
    next up to ``floor(n*(r1+r2))`` to valid, the rest to test (so test gets each user's rounding
    remainder: see the module's note on rounding).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    order = np.lexsort((data.items, data.users))
    starts, counts, _ = _grouped(data.users, order)
    shuffled = np.empty_like(order)
    for s, n in zip(starts, counts):
        shuffled[s:s + n] = order[s:s + n][rng.permutation(n)]
    rank = np.arange(len(order)) - np.repeat(starts, counts)
    cut1, cut2 = _cuts(counts, ratios)
    return _make(data, _by_rank(data, shuffled, cut1, cut2, counts, rank),
                 protocol=protocol, seed=seed, kind="random")


def _require_time(data: Interactions, what: str) -> np.ndarray:
    if data.timestamps is None:
        raise DataError(f"{what} needs timestamps, but dataset '{data.name}' has none "
                        "(for ML-1M, load a ratings file with the timestamp field).")
    return data.timestamps


def temporal_split(data: Interactions, ratios: Sequence[float] = (0.8, 0.1, 0.1),
                   protocol: str = "temporal") -> Split:
    """Per-user temporal ratio split: sort by (timestamp, item); first ``floor(n*r1)`` train, up to
    ``floor(n*(r1+r2))`` valid, the rest test (P3; test gets each user's rounding remainder: see
    the module's note on rounding)."""
    ts = _require_time(data, "a temporal split")
    order = np.lexsort((data.items, ts, data.users))
    _, counts, rank = _grouped(data.users, order)
    cut1, cut2 = _cuts(counts, ratios)
    return _make(data, _by_rank(data, order, cut1, cut2, counts, rank),
                 protocol=protocol, seed=None, kind="temporal")


def leave_last_out(data: Interactions, n_valid: int = 1, n_test: int = 1, *,
                   dedupe_train: bool = False, protocol: str = "leave-last-out") -> Split:
    """The last ``n_test`` interactions of each user (by time) are test, the ``n_valid`` before valid.

    Users need at least ``n_valid + n_test + 1`` interactions to keep one for training; shorter
    histories go to train only. With ``dedupe_train`` a repeated training item is kept once,
    at its first occurrence. At test time the history is train followed by valid.
    """
    ts = _require_time(data, "leave-last-out")
    order = np.lexsort((ts, data.users))
    _, counts, rank = _grouped(data.users, order)
    enough = counts > n_valid + n_test
    cut2 = np.where(enough, counts - n_test, counts)
    cut1 = np.where(enough, cut2 - n_valid, counts)
    train, valid, test = _by_rank(data, order, cut1, cut2, counts, rank)
    if dedupe_train:
        keys = data.users[train] * data.n_items + data.items[train]
        _, first = np.unique(keys, return_index=True)  # train is time-ordered per user
        train = train[np.sort(first)]
    return _make(data, (train, valid, test), protocol=protocol, seed=None, kind="temporal",
                 test_history="train+valid")


def global_temporal_split(data: Interactions, ratios: Sequence[float] = (0.8, 0.1, 0.1),
                          protocol: str = "global-temporal") -> Split:
    """Sort all interactions by (timestamp, user, item); first ``N*r1`` train, ... (P5).

    Only users with training interactions are evaluated; nothing after the cutoff reaches training.
    """
    ts = _require_time(data, "a global temporal split")
    order = np.lexsort((data.items, data.users, ts))
    n = np.asarray([len(order)])
    cut1, cut2 = _cuts(n, ratios)
    parts = (order[: cut1[0]], order[cut1[0]: cut2[0]], order[cut2[0]:])
    return _make(data, parts, protocol=protocol, seed=None, kind="global_temporal", eval_requires_history=True)


def cold_item_split(data: Interactions, cold_share: float = 0.2, seed: int = 2026,
                    protocol: str = "cold-items") -> Split:
    """Hold a share of items out of training entirely (P4).

    ``rng.permutation(n_items)``; the first ``round(share * n_items)`` items are cold. Every
    interaction with a cold item is test. Of each user's remaining interactions in time order,
    the last is valid (when two or more remain) and the others train. Test history is train
    followed by valid.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    cold = np.sort(rng.permutation(data.n_items)[: int(round(cold_share * data.n_items))])
    is_cold = np.zeros(data.n_items, dtype=bool)
    is_cold[cold] = True
    ts = data.timestamps if data.timestamps is not None else np.arange(len(data))
    test = np.flatnonzero(is_cold[data.items])
    warm = np.flatnonzero(~is_cold[data.items])
    order = warm[np.lexsort((ts[warm], data.users[warm]))]
    _, counts, rank = _grouped(data.users, order)
    last = np.repeat(counts - 1, counts)
    is_valid = (rank == last) & (np.repeat(counts, counts) >= 2)
    split = _make(data, (order[~is_valid], order[is_valid], test), protocol=protocol, seed=seed,
                  kind="cold", test_history="train+valid")
    split.cold_items = cold
    return split


def cold_validation(split: Split, share: float = 0.2, seed: int = 2026) -> Split:
    """A validation split for cold-start items, built from a cold split's training data only.

    Of the items that have training interactions, a random ``share`` become pseudo-cold: their
    training interactions are the new test set (ranked among the pseudo-cold items, or all),
    everything else of train stays train, and the split's valid (each user's last warm item)
    keeps serving early stopping, less any pseudo-cold rows. The real cold items and the real
    test set are not read, so choosing a cold-start configuration on this split leaves the
    test untouched.
    """
    if split.cold_items is None:
        raise ConfigError(f"cold_validation needs a cold-start split; protocol {split.protocol!r} has none.")
    if not 0 < share < 1:
        raise ConfigError(f"The 'share' parameter of cold_validation must be in (0, 1); got {share!r}.")
    rng = np.random.Generator(np.random.PCG64(seed))
    warm = np.flatnonzero(split.train.item_popularity() > 0)
    pseudo = np.sort(rng.permutation(warm)[: int(round(share * len(warm)))])
    is_pseudo = np.zeros(split.n_items, dtype=bool)
    is_pseudo[pseudo] = True
    data = split.train.concat(split.valid)
    n_train = len(split.train)
    in_train = np.arange(len(data)) < n_train
    hit = is_pseudo[data.items]
    out = _make(data, (np.flatnonzero(in_train & ~hit), np.flatnonzero(~in_train & ~hit), np.flatnonzero(in_train & hit)),
                protocol=f"{split.protocol}/cold-validation", seed=seed, kind="cold")
    out.cold_items = pseudo
    return out
