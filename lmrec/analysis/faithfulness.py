"""Are explanations faithful? The deletion test for history-item attributions.

For a user and the model's top item, an explainer ranks the user's history items by how much
each is said to contribute. Deleting the top-n attributed items from the history and scoring
again should push the item further down the ranking than deleting n random history items, if
the attributions say what the model actually uses (Samek et al. 2017's region perturbation;
DeYoung et al. 2020's comprehensiveness). Explainers:

* ``exact``: the model's own additive split of the score (:class:`~lmrec.models.capabilities.AttributesHistory`,
  LMRanker's mean tower);
* ``leave-one-out``: s(history) - s(history without j) (:func:`~lmrec.analysis.explain.history_contributions`);
  exact for models whose score is additive in the history (ItemKNN, EASE);
* ``similarity``: cosine of item vectors between j and the item (what lmrec shows for models
  that do not read the history, such as BPR-MF);
* ``random``: a random order, the baseline any explainer must beat.

Only models whose scores follow the history (``uses_history``) can be tested: deleting history
items changes nothing for the others.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.analysis.explain import history_contributions
from lmrec.evaluation.evaluator import EvalTask, top_lists
from lmrec.models.base import Recommender
from lmrec.models.capabilities import AttributesHistory

EXPLAINERS = ("exact", "leave-one-out", "similarity", "random")


def available(model: Recommender, explainer: str, user: int, item: int, row: sp.csr_matrix) -> bool:
    """Whether ``explainer`` can attribute ``model``'s scores (``exact`` needs the model's own split)."""
    if explainer == "exact":
        return isinstance(model, AttributesHistory) and model.history_attributions(user, item, row) is not None
    return explainer in EXPLAINERS


@dataclass(frozen=True)
class DeletionResult:
    """``drops[explainer][n]`` (users,) rank increase of the explained item after deleting the n
    items the explainer ranks highest; ``random[n]`` the same after deleting n random items."""

    users: np.ndarray
    items: np.ndarray
    drops: dict[str, dict[int, np.ndarray]]
    random: dict[int, np.ndarray]


def attribution_order(model: Recommender, explainer: str, user: int, item: int, row: sp.csr_matrix,
                      rng: np.random.Generator) -> np.ndarray:
    """History items of ``row`` (1, N), most contributing first according to ``explainer``."""
    items = row.indices.copy()
    if explainer == "exact" and isinstance(model, AttributesHistory):
        contrib = model.history_attributions(user, item, row)
        if contrib is None:
            raise ValueError(f"{model.name} in this configuration has no exact split of its scores")
    elif explainer == "leave-one-out":
        _, contrib, _ = history_contributions(model, user, item, row)
    elif explainer == "similarity":
        contrib = model.item_similarity(np.array([item]))[0].numpy()[items]
    elif explainer == "random":
        contrib = rng.random(len(items))
    else:
        raise ValueError(f"unknown explainer {explainer!r}; supported: {', '.join(EXPLAINERS)}")
    return items[np.argsort(-np.asarray(contrib), kind="stable")]


def _without(row: sp.csr_matrix, drop: np.ndarray) -> sp.csr_matrix:
    keep = ~np.isin(row.indices, drop)
    return sp.csr_matrix((row.data[keep], row.indices[keep], [0, int(keep.sum())]), shape=row.shape)


def deletion_test(model: Recommender, task: EvalTask, users: np.ndarray, sizes: tuple[int, ...] = (1, 3, 5),
                  explainers: tuple[str, ...] = ("leave-one-out", "similarity"), seed: int = 0) -> DeletionResult:
    """Delete each explainer's top-n history items (n in ``sizes``, at most the history less one)
    and n random ones from each user's history, re-score, and record the explained item's rank
    increase. The explained item is the user's top item under the task's ranking. An explainer
    the model does not support (``exact`` without an exact split) is left out of the result."""
    if not model.uses_history:
        raise ValueError(f"{model.name} does not read the history when scoring: deleting history items changes "
                         "nothing, so the deletion test does not apply")
    rng = np.random.default_rng(seed)
    top, _ = top_lists(model, task, 1, users)
    drops = {e: {n: np.full(len(users), np.nan) for n in sizes} for e in explainers}
    random = {n: np.full(len(users), np.nan) for n in sizes}
    for b, (user, item) in enumerate(zip(users, top[:, 0])):
        row = task.history[user]
        if item < 0 or row.nnz < 2:
            continue
        usable = [e for e in explainers if available(model, e, int(user), int(item), row)]
        orders = {e: attribution_order(model, e, int(user), int(item), row, rng) for e in usable}
        shuffled = rng.permutation(row.indices)
        variants = [(e, n, orders[e][:n]) for e in usable for n in sizes if n < row.nnz]
        variants += [("random", n, shuffled[:n]) for n in sizes if n < row.nnz]
        if not variants:
            continue
        rows = sp.vstack([_without(row, d) for _, _, d in variants], format="csr")
        scores = model.score_rows(np.full(len(variants), user), rows).float().clone()
        scores[:, torch.as_tensor(task.seen[user].indices)] = -torch.inf  # the original mask: seen items stay removed
        scores[:, torch.as_tensor(~task.candidates)] = -torch.inf
        ranks = (scores > scores[:, int(item)][:, None]).sum(1).numpy()  # 0 = still first
        for (e, n, _), r in zip(variants, ranks):
            (random if e == "random" else drops[e])[n][b] = float(r)
    drops = {e: d for e, d in drops.items() if any(np.isfinite(v).any() for v in d.values())}
    return DeletionResult(np.asarray(users), top[:, 0], drops, random)
