"""The pairwise training step shared by every model trained on (user, positive, negatives).

A model supplies a score function ``score(rows, pos, neg) -> (pos_scores (B,), neg_scores (B, m),
regularisation)`` for training rows ``rows`` (so it can find each row's user and history), their
positive items ``pos`` (B,) and negatives ``neg`` (B, m); :func:`pairwise_step` draws the negatives
as the model's negatives part says (:mod:`lmrec.training.negatives`), masks what a catalogue
part must leave out, and applies the loss. The result is the ``step`` of a :class:`lmrec.training.loop.TrainingTask`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lmrec.data.interactions import Interactions
from lmrec.losses import Loss
from lmrec.training.loop import TrainingTask
from lmrec.training.negatives import Negatives

ScoreFn = Callable[[np.ndarray, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


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
        return {"sampler": self.negatives.state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.negatives.set_state(state["sampler"])


def pairwise_step(score: ScoreFn, loss: Loss, negatives: Negatives, train: Interactions,
                  device: str | torch.device = "cpu") -> PairwiseStep:
    """The :class:`PairwiseStep` of a model's score function (see the module docstring)."""
    return PairwiseStep(score, loss, negatives, train, device)
