"""The pairwise training step shared by every model trained on (user, positive, negatives).

A model supplies a score function ``score(rows, pos, neg) -> (pos_scores (B,), neg_scores (B, m),
regularisation)`` for training rows ``rows`` (so it can find each row's user and history), their
positive items ``pos`` (B,) and negatives ``neg`` (B, m); :func:`pairwise_step` draws the negatives
as ``TrainConfig.sampler`` says, masks what a full-catalogue sampler must leave out, and applies
the loss. The result is the ``step`` of a :class:`lmrec.training.loop.TrainingTask`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lmrec.data.interactions import Interactions
from lmrec.data.sampling import NegativeSampler
from lmrec.losses import Loss
from lmrec.training.config import TrainConfig
from lmrec.training.loop import TrainingTask

FULL_CATALOGUE = ("all", "unseen")  # samplers that score every item as a negative
ScoreFn = Callable[[np.ndarray, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class Negatives:
    """Negatives for a batch by ``cfg.sampler``: uniform, popularity, in-batch, hard, all, unseen."""

    def __init__(self, train: Interactions, cfg: TrainConfig) -> None:
        kind = cfg.sampler if cfg.sampler in ("uniform", "popularity") else "uniform"
        n_draw = cfg.n_negatives * (cfg.hard_pool if cfg.sampler == "hard" else 1)
        self.sampler = NegativeSampler(train, kind, n_draw, alpha=cfg.pop_alpha, seed=cfg.seed, pool=cfg.negative_pool)
        self.cfg = cfg

    @property
    def n_items(self) -> int:
        return self.sampler.n_items

    def draw(self, users: np.ndarray, pos: torch.Tensor,
             pool_scores: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """(B, n_negatives) negative items ((B, N) for "all" and "unseen", the positive among them).

        ``pool_scores(candidates (B, p)) -> (B, p)`` scores a candidate pool with the current model;
        the "hard" sampler keeps the highest-scoring ``n_negatives`` of ``hard_pool`` × as many.
        """
        return self.choose(self.candidates(users, pos), pos, pool_scores)

    def candidates(self, users: np.ndarray, pos: torch.Tensor) -> torch.Tensor | None:
        """The random part of :meth:`draw`: (B, m) negatives, or the hard sampler's (B, p) pools;
        None for the full-catalogue samplers (nothing random)."""
        cfg = self.cfg
        if cfg.sampler in FULL_CATALOGUE:
            return None
        if cfg.sampler == "in-batch":
            shifts = torch.arange(1, cfg.n_negatives + 1)
            idx = (torch.arange(len(pos))[:, None] + shifts[None, :]) % max(len(pos), 1)
            return pos[idx]  # other rows' positives: popularity-distributed
        return torch.from_numpy(self.sampler.sample(users)).to(pos.device)

    def choose(self, candidates: torch.Tensor | None, pos: torch.Tensor,
               pool_scores: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """The negatives from :meth:`candidates`: the whole catalogue when None (the positive among
        them; masks() leaves its score out), the hardest of the pools for "hard", else themselves."""
        if candidates is None:
            return torch.arange(self.n_items, device=pos.device).expand(len(pos), -1)
        if self.cfg.sampler != "hard" or pool_scores is None:
            return candidates
        return self.hardest(candidates, pool_scores)

    def hardest(self, pool: torch.Tensor, pool_scores: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The ``n_negatives`` highest-scoring items of each row's candidate ``pool`` (B, p)."""
        with torch.no_grad():  # score the candidate pool with the current model, keep the hardest
            top = torch.topk(pool_scores(pool), self.cfg.n_negatives, dim=1).indices
        return torch.gather(pool, 1, top)

    def masks(self, users: np.ndarray, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor | None:
        """(B, N) bool of the scores a full-catalogue sampler leaves out — the positive ("all"), or
        every item the user has in training ("unseen"; the positive is one of them); else None."""
        if self.cfg.sampler == "unseen":
            return self.seen(users).to(neg.device)
        if self.cfg.sampler == "all":
            return (neg == pos[:, None]) | torch.from_numpy(self.sampler.outside).to(neg.device)
        return None

    def seen(self, users: np.ndarray) -> torch.Tensor:
        """(len(users), N) bool: True where the user has the item in training, or the item lies
        outside the negative pool (never a negative)."""
        return torch.from_numpy(self.sampler.known_rows(users) | self.sampler.outside)


class PairwiseStep:
    """``step(rows) -> loss`` for a :class:`~lmrec.training.loop.TrainingTask`: draw negatives for the
    rows' users, score positives and negatives, mask, apply ``loss`` and add the regularisation.

    ``begin(batch)`` (the task's ``begin_batch``) draws the negatives of a whole batch at once;
    ``step`` on a part of that batch (a micro-batch, a data-parallel rank's share) then uses the
    part's rows of them, so every split of a batch trains on the draws of the unsplit batch. A
    step on rows outside the current batch draws its own. ``state`` / ``set_state`` are the
    sampler's random state, for checkpoints.
    """

    def __init__(self, score: ScoreFn, loss: Loss, negatives: Negatives, train: Interactions,
                 device: str | torch.device = "cpu") -> None:
        self.score, self.loss, self.negatives, self.train, self.device = score, loss, negatives, train, device
        self.items = torch.as_tensor(train.items)
        self.where = np.full(len(train), -1, dtype=np.int64)  # row -> its position in the current batch
        self.batch: np.ndarray | None = None
        self.drawn: torch.Tensor | None = None  # (len(batch), m) negatives, or the hard sampler's pools

    def begin(self, rows: np.ndarray) -> None:
        if self.batch is not None:
            self.where[self.batch] = -1
        self.batch, self.where[rows] = rows, np.arange(len(rows))
        self.drawn = self.negatives.candidates(self.train.users[rows], self.items[rows].to(self.device))

    def __call__(self, rows: np.ndarray) -> torch.Tensor:
        users = self.train.users[rows]
        pos = self.items[rows].to(self.device)
        at = self.where[rows]
        if self.batch is not None and (at >= 0).all():  # a part of the current batch: its rows of the draws
            candidates = None if self.drawn is None else self.drawn[torch.from_numpy(at).to(self.device)]
        else:
            candidates = self.negatives.candidates(users, pos)
        neg = self.negatives.choose(candidates, pos, lambda pool: self.score(rows, pos, pool)[1])
        pos_scores, neg_scores, reg = self.score(rows, pos, neg)
        mask = self.negatives.masks(users, pos, neg)
        if mask is not None:
            neg_scores = neg_scores.masked_fill(mask, -torch.inf)
        return self.loss(pos_scores, neg_scores) + reg

    def task(self, module: nn.Module, **options: Any) -> TrainingTask:
        """The loop's task for ``module`` trained by this step (``options``: other TrainingTask fields)."""
        return TrainingTask(module, self, len(self.train), begin_batch=self.begin, random=self, **options)

    def state(self) -> dict[str, Any]:
        return {"sampler": self.negatives.sampler.state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.negatives.sampler.set_state(state["sampler"])


def pairwise_step(score: ScoreFn, loss: Loss, negatives: Negatives, train: Interactions,
                  device: str | torch.device = "cpu") -> PairwiseStep:
    """The :class:`PairwiseStep` of a model's score function (see the module docstring)."""
    return PairwiseStep(score, loss, negatives, train, device)
