"""Full-ranking evaluation: every candidate item is scored, seen items removed, top-K kept.

>>> ev = Evaluator(split, ["ndcg@10", "recall@10", "auc"])  # doctest: +SKIP
>>> result = ev.evaluate(model)
>>> result.summary()["ndcg@10"]
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.data.interactions import Interactions
from lmrec.data.splits import Split
from lmrec.errors import ConfigError, check_choice
from lmrec.evaluation.metrics import LIST_METRICS, PER_USER, MetricSpec, auc_per_user, parse_metric
from lmrec.ranking import top_rows
from lmrec.sparse import mask_seen



class Scorer(Protocol):
    """What the evaluator needs of a model: scores of every item for a batch of users given their
    history rows (every :class:`~lmrec.models.base.Recommender` is one)."""

    def score_batch(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        """(len(users), n_items) scores; ``users`` are dense indices, ``history`` the CSR rows of all users."""

DEFAULT_METRICS = ("ndcg@10", "recall@10", "ndcg@20", "recall@20", "hr@10", "mrr@10", "precision@10", "auc")
"""The metrics an evaluation reports when none are named (see :func:`parse_metric` for the names)."""


@dataclass
class EvalResult:
    """Metric values: ``per_user[name]`` is aligned with ``users``; ``aggregate`` holds list metrics."""

    users: np.ndarray
    per_user: dict[str, np.ndarray]
    aggregate: dict[str, float]
    seconds: float
    n_candidates: int
    extra: dict[str, object] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """Mean over users for per-user metrics (NaN AUCs skipped), plus the list metrics."""
        out = {name: float(np.nanmean(v)) if len(v) else float("nan") for name, v in self.per_user.items()}
        return {**out, **self.aggregate}


@dataclass
class EvalTask:
    """What to rank: truth (targets), history (model input), seen (removed), candidate mask."""

    truth: sp.csr_matrix
    history: sp.csr_matrix
    seen: sp.csr_matrix
    users: np.ndarray
    candidates: np.ndarray  # bool, (n_items,)
    popularity: np.ndarray

    @classmethod
    def build(cls, train: Interactions, target: Interactions, *, history: Interactions | None = None,
              seen: Interactions | None = None, candidates: np.ndarray | None = None,
              require_history: bool = False) -> EvalTask:
        history = train if history is None else history
        seen = history if seen is None else seen
        cand = np.ones(train.n_items, dtype=bool) if candidates is None else _mask(candidates, train.n_items)
        truth = target.to_csr()
        truth = sp.csr_matrix(truth.multiply(cand[None, :]))  # targets outside the candidates do not count
        truth.eliminate_zeros()
        users = np.flatnonzero(np.diff(truth.indptr) > 0)
        if require_history:
            users = users[np.diff(history.to_csr().indptr)[users] > 0]
        return cls(truth, history.to_csr(order=True), seen.to_csr(), users, cand, train.item_popularity())


def _mask(items: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[items] = True
    return m


class Evaluator:
    """Evaluate a fitted :class:`~lmrec.models.base.Recommender` on a split with named metrics.

    Parameters
    ----------
    split: the :class:`Split` (its ``test_history`` decides what the model reads at test time).
    metrics: names such as ``"ndcg@10"``, ``"recall@20"``, ``"auc"``, ``"coverage@10"``.
    stage: ``"test"`` or ``"valid"``.
    candidates: ``"all"`` items, or ``"cold"`` to rank only the split's cold items.
    batch_size: users scored at once; device: where top-K runs.
    """

    def __init__(self, split: Split, metrics: Sequence[str] = DEFAULT_METRICS, *, stage: str = "test",
                 candidates: str = "all", batch_size: int = 1024, device: str = "cpu") -> None:
        check_choice("Evaluator", "stage", stage, ["test", "valid"])
        check_choice("Evaluator", "candidates", candidates, ["all", "cold"])
        if candidates == "cold" and split.cold_items is None:
            raise ConfigError(f"candidates='cold' needs a cold-start split; protocol {split.protocol!r} has no cold items.")
        target = split.test if stage == "test" else split.valid
        self.task = EvalTask.build(split.train, target, history=split.history(stage), seen=split.seen(stage),
                                   candidates=split.cold_items if candidates == "cold" else None,
                                   require_history=split.eval_requires_history)
        self.specs = [parse_metric(m) for m in metrics]
        self.batch_size = batch_size
        self.device = device

    def evaluate(self, model: Scorer) -> EvalResult:
        return evaluate_task(model, self.task, self.specs, self.batch_size, self.device)


def ranking_scores(model: Scorer, task: EvalTask, users: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """(B, N) scores of ``users`` as the evaluator ranks them: NaN, seen items and non-candidates -inf."""
    return rankable(model.score_batch(users, task.history), task, users, device)


def rankable(scores: torch.Tensor, task: EvalTask, users: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """A copy of (B, N) ``scores`` of ``users`` with NaN, seen items and non-candidates set to -inf."""
    scores = scores.to(device=device, dtype=torch.float32).clone()
    scores[torch.isnan(scores)] = -torch.inf
    mask_seen(scores, task.seen[users])
    scores[:, torch.as_tensor(~task.candidates, device=device)] = -torch.inf
    return scores


def top_hits(scores: torch.Tensor, truth: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top indices (B, k), listed (B, k): the slot holds a rankable item, hits (B, k) on CPU) of masked scores."""
    top_scores, top = top_rows(scores, k)
    # with fewer than k rankable items, the last slots hold removed (-inf) items: not recommended
    listed = torch.isfinite(top_scores)
    return top, listed, (torch.gather(truth, 1, top) & listed).cpu()


def user_values(scores: torch.Tensor, task: EvalTask, users: np.ndarray, spec: MetricSpec) -> np.ndarray:
    """Per-user values of one top-K metric (ndcg@10, recall@20, ...) for masked (B, N) ``scores``."""
    truth = torch.as_tensor(task.truth[users].toarray() > 0, device=scores.device)
    k = min(int(spec.k or 1), int(task.candidates.sum()))
    _, _, hits = top_hits(scores, truth, k)
    return PER_USER[spec.kind](hits, truth.sum(1).cpu(), spec.k).numpy()  # type: ignore[arg-type]


def top_lists(model: Scorer, task: EvalTask, k: int, users: np.ndarray | None = None, batch_size: int = 1024,
              device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(items (U, k), scores (U, k)) the evaluator's top-k lists of ``users`` (default: the task's);
    a slot with no rankable item left holds item -1 and score -inf."""
    users = task.users if users is None else users
    k = min(k, task.truth.shape[1])
    items, scores = np.full((len(users), k), -1, dtype=np.int64), np.full((len(users), k), -np.inf)
    for lo in range(0, len(users), batch_size):
        top_scores, top = top_rows(ranking_scores(model, task, users[lo: lo + batch_size], device), k)
        ok = torch.isfinite(top_scores)
        items[lo: lo + len(top)] = torch.where(ok, top, -1).cpu().numpy()
        scores[lo: lo + len(top)] = top_scores.cpu().double().numpy()
    return items, scores


def evaluate_task(model: Scorer, task: EvalTask, specs: Sequence[MetricSpec], batch_size: int = 1024,
                  device: str = "cpu") -> EvalResult:
    """Score, mask, take top-K and compute every metric, batch by batch."""
    start = time.perf_counter()
    k_max = max([s.k for s in specs if s.k is not None] or [1])
    k_max = min(k_max, int(task.candidates.sum()))
    need_auc = any(s.kind == "auc" for s in specs)
    per_user: dict[str, list[np.ndarray]] = {s.label: [] for s in specs if s.per_user}
    list_specs = [s for s in specs if s.kind in LIST_METRICS]
    exposure = {s.k: np.zeros(task.truth.shape[1], dtype=np.int64) for s in list_specs}
    for lo in range(0, len(task.users), batch_size):
        users = task.users[lo: lo + batch_size]
        scores = ranking_scores(model, task, users, device)
        truth = torch.as_tensor(task.truth[users].toarray() > 0, device=device)
        top, listed, hits = top_hits(scores, truth, k_max)
        n_pos = truth.sum(1).cpu()
        for s in specs:
            if s.kind in PER_USER:
                per_user[s.label].append(PER_USER[s.kind](hits, n_pos, s.k).numpy())  # type: ignore[arg-type]
        if need_auc:
            valid = torch.isfinite(scores)
            per_user["auc"].append(auc_per_user(scores, truth & valid, valid).cpu().numpy())
        for k, counts in exposure.items():
            np.add.at(counts, top[:, :k][listed[:, :k]].cpu().numpy(), 1)
    cand_idx = np.flatnonzero(task.candidates)
    pop = task.popularity[cand_idx]
    tail = np.zeros(len(cand_idx), dtype=bool)
    tail[np.argsort(pop, kind="stable")[: int(0.8 * len(cand_idx))]] = True  # 80% least popular
    aggregate = {s.label: LIST_METRICS[s.kind](exposure[s.k][cand_idx], len(task.users), s.k, tail) for s in list_specs}  # type: ignore[index]
    return EvalResult(
        users=task.users,
        per_user={k: np.concatenate(v) if v else np.zeros(0) for k, v in per_user.items()},
        aggregate=aggregate, seconds=time.perf_counter() - start, n_candidates=int(task.candidates.sum()),
    )
