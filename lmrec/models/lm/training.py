"""How an LMRanker trains: the loop's task for its parts (per-pair steps, or per-user catalogue steps).

Training reads the built network and parts (:class:`TrainingParts`), never the model object.
Shapes: B training rows in a batch, m negatives per row, N items, G distinct users of a batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.data.interactions import Interactions
from lmrec.losses import Loss
from lmrec.models.lm.items import Adjacency
from lmrec.models.lm.net import LMNet
from lmrec.models.lm.scorers import Scorer
from lmrec.models.lm.users import MeanUserModule, UserTower, entries
from lmrec.sparse import csr_product
from lmrec.training.config import TrainConfig
from lmrec.training.loop import TrainingTask
from lmrec.training.negatives import NegativeSampling, Negatives, Unseen
from lmrec.training.pairwise import pairwise_step

DENSE_SCORES = 2**24  # batch x catalogue scores computed in full during training (64 MB of float32)
BATCH_ITEMS_SHARE = 0.25  # a step projects only its batch's items when they are at most this share of the catalogue


@dataclass(frozen=True)
class TrainingParts:
    """What an LMRanker's training reads: the built network, the scorer, loss and negatives parts,
    the item graph (``adj``: the normalised adjacency on the training device, None without graph
    layers), the user tower's options and the encoder's learning rate (None: the heads' rate)."""

    net: LMNet
    scorer: Scorer
    loss: Loss
    negatives: NegativeSampling
    adj: Adjacency | None
    user: UserTower
    encoder_lr: float | None


def training_task(parts: TrainingParts, train: Interactions, cfg: TrainConfig) -> TrainingTask:
    """The :class:`TrainingTask` of a built LMRanker's parts: its step, batching and optimizer groups."""
    net, negatives = parts.net, Negatives(train, parts.negatives, cfg.seed)
    per_user = isinstance(parts.negatives, Unseen) and parts.negatives.per_user  # ranker._resolve checked the tower
    encoder_groups = net.text.param_groups(parts.encoder_lr)
    heads = [p for name, p in net.named_parameters() if not name.startswith("text.")]
    options = dict(groups=train.users if parts.user.grouped_batches or per_user else None,
                   param_groups=[{"params": heads}, *encoder_groups] if encoder_groups else None,
                   after_update=net.text.after_update, before_validation=net.text.refresh)
    if per_user:  # nothing random to draw: every unseen item is a negative
        return TrainingTask(net, per_user_step(parts, train, negatives), len(train), **options)
    histories = train.to_csr()
    scores = TextSpaceScores(parts, histories) if text_space(net) else partial(pair_scores, parts,
                                                                                 histories=histories)
    step = pairwise_step(scores, parts.loss, negatives, train, cfg.device)
    return step.task(net, **options)


def pair_scores(parts: TrainingParts, rows: np.ndarray, pos: torch.Tensor, neg: torch.Tensor,
                histories: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(positive scores (B,), negative scores (B, m), 0): each row's user without its positive.
    ``histories``: the (U, N) training matrix (which items a batch's users can read)."""
    net = parts.net
    table = net.text.training_table(pos, neg)  # (N, T)
    read = batch_items(net.users.row_users[rows].numpy(), pos, neg, histories) if net.items.per_item else None
    if read is not None and len(read) <= BATCH_ITEMS_SHARE * len(table):
        index = torch.as_tensor(read, device=table.device)
        v = net.items.rows(table[index], index, len(table))  # (N, d), zero outside the batch's items
    else:
        v = net.item_reps(parts.adj, table)  # (N, d)
    u = net.users.train_users(net.items.history(v), rows, pos)  # (B, d)
    return candidate_scores(parts.scorer, u, v, torch.cat([pos[:, None], neg], dim=1))


def candidate_scores(scorer: Scorer, u: torch.Tensor, v: torch.Tensor,
                     cand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(positive scores (B,), negative scores (B, m), 0) of users ``u`` (B, d) against their
    candidates ``cand`` (B, 1 + m), positives first, which index the item rows ``v`` (K, d)."""
    if score_all_rows(len(u), len(v), cand.numel(), v.shape[1]):
        # all (B, K) scores, then gather: the backward of a gather is a cheap dense scatter, while
        # the backward of v[cand] (an accumulating index_put over B * (1 + m) rows) is slow on CPU
        scores = torch.gather(scorer.pair(u, v), 1, cand)
    else:
        scores = scorer.pair(u, v[cand])
    return scores[:, 0], scores[:, 1:], scores.new_zeros(())


def score_all_rows(n_users: int, n_rows: int, n_candidates: int, dim: int) -> bool:
    """Whether a step scores its B users against all K item rows and gathers the candidates' scores
    (B K floats) rather than gathering the candidates' rows first (B (1 + m) d floats): when the
    first is small (at most DENSE_SCORES) or no larger than the second, as with catalogue-wide
    negatives (1 + m close to K), where the gathered rows would take d times the memory (55 GB at
    B 4096, K 4,386, d 768)."""
    dense = n_users * n_rows
    return dense <= DENSE_SCORES or dense <= n_candidates * dim


def text_space(net: LMNet) -> bool:
    """Whether a step may average histories in text space (:class:`TextSpaceScores`): a frozen
    table, an affine item tower and the mean tower without history dropout."""
    return net.text.frozen and net.items.linear and isinstance(net.users, MeanUserModule) and not net.users.dropout


class TextSpaceScores:
    """Pair scores of the mean tower over an affine item tower and a frozen table, in text space.

    With v_j = W e_j + b + id_j and h_j = v_j + hid_j, a user's mean over history items H is
    u = W ē_H + b + mean_H(id + hid) (just 0 for an empty H, as the mean tower gives). The text
    sums Σ_H e_j of every user are computed once (U, T), so a step costs B (2 + m) projections
    instead of projecting the whole catalogue (at most B (1 + m) distinct candidates, each once): an
    epoch grows with the data, not data x catalogue.
    Equal to :func:`pair_scores` up to floating-point order.
    """

    def __init__(self, parts: TrainingParts, histories: sp.csr_matrix) -> None:
        self.parts, self.histories = parts, histories
        table = parts.net.text.table
        with torch.no_grad():
            self.text_sums = csr_product(histories, table)  # (U, T)
        self.counts = torch.as_tensor(np.diff(histories.indptr), dtype=table.dtype, device=table.device)

    def __call__(self, rows: np.ndarray, pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, ...]:
        net = self.parts.net
        table, items = net.text.table, net.items
        users = net.users.row_users[rows]
        user_rows = users.numpy()
        there_t = entries(self.histories, user_rows, pos, table)  # 1 where the row's user has its positive
        at = users.to(table.device)
        count = self.counts[at] - there_t  # (B,) history length without the positive
        text_mean = (self.text_sums[at] - there_t[:, None] * table[pos]) / count.clamp(min=1)[:, None]
        u = items.proj(text_mean) * (count > 0).to(table.dtype)[:, None]  # (B, d)
        ids = items.id_parts()
        if ids is not None:
            id_sum = csr_product(self.histories[user_rows.copy()], ids) - there_t[:, None] * ids[pos]
            u = u + id_sum / count.clamp(min=1)[:, None]
        u = net.users.finish(u, users)
        # each distinct candidate projected once: with catalogue-wide negatives a batch's (B, 1 + m)
        # candidates repeat the same few thousand items, whose (B, 1 + m, T) text rows would not fit
        distinct, local = torch.unique(torch.cat([pos[:, None], neg], dim=1), return_inverse=True)
        return candidate_scores(self.parts.scorer, u, items.project(table[distinct], distinct), local)


def batch_items(users: np.ndarray, pos: torch.Tensor, neg: torch.Tensor, histories: sp.csr_matrix) -> np.ndarray:
    """Sorted distinct items a training step reads: its positives, negatives and every item of its
    users' training histories (a superset of what any user tower reads)."""
    seen = histories[np.unique(users)].indices
    return np.unique(np.concatenate([pos.cpu().numpy(), neg.cpu().numpy().reshape(-1), seen]))


def per_user_step(parts: TrainingParts, train: Interactions, negatives: Negatives):  # type: ignore[no-untyped-def]
    """The softmax loss of a batch whose negatives are, for each positive, its user's unseen items,
    with the catalogue scored once per distinct user of the batch.

    log Σ_unseen e^s over a user's catalogue row is shared by all the user's positives, and the
    softmax of a positive against that single log-sum equals its softmax against the whole set.
    """
    items = torch.as_tensor(train.items)

    def step(rows: np.ndarray) -> torch.Tensor:
        net, scorer = parts.net, parts.scorer
        group_users, group = np.unique(train.users[rows], return_inverse=True)
        group = group.reshape(-1)
        pos = items[rows].to(net.text.table.device)
        v = net.item_reps(parts.adj, net.text.training_table(pos, None))  # (N, d)
        u_pos, u_all = net.users.catalogue_users(net.items.history(v), group_users, group, pos)
        pos_scores = scorer.pair(u_pos, v[pos].unsqueeze(1))[:, 0]  # (B,)
        catalogue = scorer.pair(u_all, v)  # (G, N)
        seen = negatives.seen(group_users).to(catalogue.device)
        # a finite floor, not -inf: a user with every item seen gets a negligible log-sum, not NaN gradients
        log_sum = torch.logsumexp(catalogue.masked_fill(seen, torch.finfo(catalogue.dtype).min), dim=-1)
        return parts.loss(pos_scores, log_sum[torch.as_tensor(group, device=log_sum.device)].unsqueeze(-1))

    return step
