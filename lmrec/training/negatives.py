"""Negative sampling as a part: where a training step's negatives come from.

Each kind is an options part (:data:`NEGATIVES`) that owns its fields; :class:`Negatives` is
what a training step draws from, built once in ``fit`` from the part and the training data:

* :class:`Uniform` -- ``n`` items per positive, uniformly, redrawn when the user has them;
* :class:`Popularity` -- ``n`` items per positive with p(i) ∝ count(i) ** alpha;
* :class:`InBatch` -- the positives of ``n`` other rows of the same batch (popularity-distributed,
  no extra items scored);
* :class:`Hard` -- the ``n`` highest-scoring of ``candidates`` × n uniform items, scored by the
  model being trained;
* :class:`AllItems` -- the whole catalogue but the positive (with the softmax loss: the full
  cross-entropy over the catalogue);
* :class:`Unseen` -- the whole catalogue less every item the user has in training; ``per_user``
  scores the catalogue once per user of a batch instead of once per pair (the same softmax).

``pool="train-items"`` (uniform, hard and the catalogue kinds) keeps negatives among items with
a training interaction, so items new at training time (cold items) are never pushed down.

>>> resolve(NEGATIVES, {"type": "hard", "n": 4, "factor": 8}, owner="LMRanker", param="negatives")
Hard(n=4, pool='all-items', factor=8)
>>> Negatives(train, Uniform(n=8), seed=1).candidates(users, pos).shape   # doctest: +SKIP
torch.Size([B, 8])
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from lmrec.data.interactions import Interactions
from lmrec.data.sampling import POOLS, NegativeSampler
from lmrec.errors import ConfigError, check_choice
from lmrec.options import Options, resolve
from lmrec.training.config import TrainConfig

PoolScores = Callable[[torch.Tensor], torch.Tensor]  # candidates (B, p) -> their scores (B, p)


@dataclass
class NegativeSampling(Options):
    """Base of the negatives parts. ``catalogue``: every item is scored as a negative (nothing drawn)."""

    catalogue: ClassVar[bool] = False

    def item_pool(self) -> str:
        """Which items may be negatives: "all-items" or "train-items"."""
        return "all-items"

    def draws(self) -> int:
        """Items the data sampler draws per row (a hard sampler's candidate pool)."""
        return 1

    def sampler_kind(self) -> str:
        return "uniform"

    def candidates(self, negatives: Negatives, users: np.ndarray, pos: torch.Tensor) -> torch.Tensor | None:
        """The random part of a draw: (B, m) items, a hard sampler's (B, p) pools, or None (catalogue)."""
        return torch.from_numpy(negatives.sampler.sample(users)).to(pos.device)

    def choose(self, candidates: torch.Tensor | None, pos: torch.Tensor,
               pool_scores: PoolScores | None) -> torch.Tensor:
        """The negatives from :meth:`candidates` (the hardest of the pools for :class:`Hard`)."""
        assert candidates is not None
        return candidates

    def masks(self, negatives: Negatives, users: np.ndarray, pos: torch.Tensor,
              neg: torch.Tensor) -> torch.Tensor | None:
        """(B, N) bool of the scores a catalogue part leaves out; None for drawn negatives."""
        return None


@dataclass
class Drawn(NegativeSampling):
    """Negatives drawn per positive. n: negatives per positive."""

    n: int = 1

    def validate(self) -> None:
        self.check_range("n", 1)

    def draws(self) -> int:
        return self.n


@dataclass
class Popularity(Drawn):
    """p(i) ∝ count(i) ** alpha (0.75 as in word2vec); items without training counts are never drawn."""

    kind = "popularity"
    alpha: float = 0.75

    def validate(self) -> None:
        super().validate()
        self.check_range("alpha", 0.0)

    def sampler_kind(self) -> str:
        return "popularity"


@dataclass
class InBatch(Drawn):
    """The positives of the next ``n`` rows of the batch (so training items, popularity-distributed)."""

    kind = "in-batch"

    def candidates(self, negatives: Negatives, users: np.ndarray, pos: torch.Tensor) -> torch.Tensor:
        shifts = torch.arange(1, self.n + 1)
        idx = (torch.arange(len(pos))[:, None] + shifts[None, :]) % max(len(pos), 1)
        return pos[idx]


@dataclass
class Pooled(Drawn):
    """pool: "all-items", or "train-items" (items with a training interaction only)."""

    _: KW_ONLY
    pool: str = "all-items"

    def validate(self) -> None:
        super().validate()
        check_choice(type(self).__name__, "pool", self.pool, POOLS)

    def item_pool(self) -> str:
        return self.pool


@dataclass
class Uniform(Pooled):
    """n items per positive, uniform over the pool; items the user has are redrawn."""

    kind = "uniform"


@dataclass
class Hard(Pooled):
    """The n highest-scoring of ``factor`` × n uniform candidates under the current model."""

    kind = "hard"
    factor: int = 10  # uniform candidates scored per kept negative

    def validate(self) -> None:
        super().validate()
        self.check_range("factor", 1)

    def draws(self) -> int:
        return self.n * self.factor

    def choose(self, candidates: torch.Tensor | None, pos: torch.Tensor,
               pool_scores: PoolScores | None) -> torch.Tensor:
        assert candidates is not None
        if pool_scores is None:
            return candidates
        with torch.no_grad():  # score the candidate pool with the current model, keep the hardest
            top = torch.topk(pool_scores(candidates), self.n, dim=1).indices
        return torch.gather(candidates, 1, top)


@dataclass
class Catalogue(NegativeSampling):
    """Every item of the pool is a negative: nothing is drawn, every score enters the loss."""

    catalogue: ClassVar[bool] = True
    pool: str = "all-items"  # or "train-items": items with a training interaction only

    def validate(self) -> None:
        check_choice(type(self).__name__, "pool", self.pool, POOLS)

    def item_pool(self) -> str:
        return self.pool

    def candidates(self, negatives: Negatives, users: np.ndarray, pos: torch.Tensor) -> None:
        return None  # nothing random: Negatives.choose gives every row the whole catalogue


@dataclass
class AllItems(Catalogue):
    """The whole catalogue but the positive: with the softmax loss, full cross-entropy."""

    kind = "all"

    def masks(self, negatives: Negatives, users: np.ndarray, pos: torch.Tensor,
              neg: torch.Tensor) -> torch.Tensor:
        return (neg == pos[:, None]) | torch.from_numpy(negatives.sampler.outside).to(neg.device)


@dataclass
class Unseen(Catalogue):
    """The whole catalogue less every item the user has in training (the user's other positives are
    not pushed down either, as the drawn kinds' redraws avoid them).

    per_user: score the catalogue once per distinct user of a batch (batches hold each user's rows
        together) instead of once per training pair: a user's unseen items, scored against the mean
        of the user's whole history, are the negatives of all that user's positives, each positive
        scored with itself left out of the mean. Needs the softmax loss and LMRanker's mean tower.
    """

    kind = "unseen"
    per_user: bool = False

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.per_user, bool):
            raise ConfigError(f"The 'per_user' parameter of Unseen must be true or false; got {self.per_user!r}.")

    def masks(self, negatives: Negatives, users: np.ndarray, pos: torch.Tensor,
              neg: torch.Tensor) -> torch.Tensor:
        return negatives.seen(users).to(neg.device)


NEGATIVES: dict[str, type[NegativeSampling]] = {
    "uniform": Uniform, "popularity": Popularity, "in-batch": InBatch, "hard": Hard, "all": AllItems,
    "unseen": Unseen}
"""The negative sampler parts by name (``"uniform"``, ``"popularity"``, ``"in-batch"``, ``"hard"``, ``"all"``, ``"unseen"``)."""


class Negatives:
    """What a training step draws its negatives from: a negatives part over the training data.

    ``candidates(users, pos)`` is the random part (drawn once per batch, see
    :class:`~lmrec.training.pairwise.PairwiseStep`), ``choose`` turns it into the negatives (B, m)
    ((B, N) for the catalogue kinds, the positive among them), ``masks`` gives the scores a
    catalogue kind leaves out. ``state`` / ``set_state``: the random state, for checkpoints.
    """

    def __init__(self, train: Interactions, part: NegativeSampling | TrainConfig, seed: int | None = None) -> None:
        if isinstance(part, TrainConfig):  # a model whose negatives are still TrainConfig fields (BPR-MF, LightGCN)
            seed, part = part.seed if seed is None else seed, negatives_from_config(part)
        self.part = part
        self.sampler = NegativeSampler(train, part.sampler_kind(), part.draws(),
                                       alpha=part.alpha if isinstance(part, Popularity) else 0.75,
                                       seed=2026 if seed is None else seed, pool=part.item_pool())

    @property
    def n_items(self) -> int:
        return self.sampler.n_items

    def draw(self, users: np.ndarray, pos: torch.Tensor, pool_scores: PoolScores | None = None) -> torch.Tensor:
        """(B, m) negatives ((B, N) for the catalogue kinds); ``pool_scores`` scores a hard sampler's pools."""
        return self.choose(self.candidates(users, pos), pos, pool_scores)

    def candidates(self, users: np.ndarray, pos: torch.Tensor) -> torch.Tensor | None:
        return self.part.candidates(self, users, pos)

    def choose(self, candidates: torch.Tensor | None, pos: torch.Tensor,
               pool_scores: PoolScores | None = None) -> torch.Tensor:
        if candidates is None:
            return torch.arange(self.n_items, device=pos.device).expand(len(pos), -1)
        return self.part.choose(candidates, pos, pool_scores)

    def masks(self, users: np.ndarray, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor | None:
        return self.part.masks(self, users, pos, neg)

    def seen(self, users: np.ndarray) -> torch.Tensor:
        """(len(users), N) bool: True where the user has the item in training, or the item lies
        outside the negative pool (never a negative)."""
        return torch.from_numpy(self.sampler.known_rows(users) | self.sampler.outside)

    def state(self) -> dict[str, Any]:
        return self.sampler.state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.sampler.set_state(state)


def negatives_part(value: NegativeSampling | str | dict[str, Any], owner: str) -> NegativeSampling:
    """A validated negatives part from a part, its name ("unseen") or its saved dict."""
    return resolve(NEGATIVES, value, owner=owner, param="negatives")


CONFIG_FIELDS = ("sampler", "n_negatives", "pop_alpha", "hard_pool", "negative_pool")  # TrainConfig's negatives


def negatives_from_config(cfg: TrainConfig) -> NegativeSampling:
    """The negatives part that TrainConfig's ``sampler``, ``n_negatives``, ``pop_alpha``,
    ``hard_pool`` and ``negative_pool`` describe (how BPR-MF and LightGCN still give them, and
    how LMRanker gave them before its ``negatives`` part)."""
    n, pool = cfg.n_negatives, cfg.negative_pool
    parts: dict[str, NegativeSampling] = {
        "uniform": Uniform(n, pool=pool), "popularity": Popularity(n, alpha=cfg.pop_alpha), "in-batch": InBatch(n),
        "hard": Hard(n, factor=cfg.hard_pool, pool=pool), "all": AllItems(pool), "unseen": Unseen(pool)}
    if cfg.sampler not in parts:
        check_choice("TrainConfig", "sampler", cfg.sampler, tuple(parts))
    part = parts[cfg.sampler]
    part.validate()
    return part
