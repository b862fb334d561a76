"""The one top-k of lmrec: the best items of score rows, with items left out.

``Recommender.recommend``, ``similar_items``, ``LMRanker.recommend_for_history``, the serving
indexes, the evaluator's lists and the retraining gate all rank through :func:`top_rows` (tensors
on their device) or :func:`top_k` (numpy, with items left out), so a model, its evaluation and the
server that serves it list the same items in the same order, ties included.
"""
from __future__ import annotations

from typing import Union

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.errors import ConfigError
from lmrec.sparse import mask_seen

Scores = Union[torch.Tensor, np.ndarray]


def top_k(scores: Scores, k: int, exclude: sp.spmatrix | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items of each row of ``scores``, best first: ``(indices, scores)`` as numpy arrays.

    Parameters
    ----------
    scores: ``(B, N)`` for a batch of users, or ``(N,)`` for one (torch or numpy; left unchanged).
    k: how many items; at most ``N`` are returned.
    exclude: items left out. For a batch, a ``(B, N)`` sparse matrix whose nonzeros are removed
        from their row (each user's history); for one row, an array of item indices.

    Excluded items and NaN scores count as ``-inf``. A batch keeps ``min(k, N)`` columns: a row
    with fewer rankable items ends with ``-inf`` slots (as the evaluator's lists do). One row
    returns only its rankable items (finite scores), so it may be shorter than ``k``.

    Ties keep ``torch.topk``'s order, which is the same for a row alone and inside a batch (CPU).
    The scores keep their dtype: casting float64 scores to float32 could make ties that were not there.

    >>> items, best = top_k(np.array([0.5, 2.0, 1.0, 2.0]), 2, exclude=np.array([3]))
    >>> items.tolist(), best.tolist()
    ([1, 2], [2.0, 1.0])
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"k must be a positive integer; got {k!r}.")
    s = torch.as_tensor(scores)
    if s.dim() not in (1, 2):
        raise ConfigError(f"top_k needs scores of shape (N,) or (B, N); got {tuple(s.shape)}.")
    single = s.dim() == 1
    s = s.clone()[None] if single else s.clone()  # (B, N), a copy: masking must not touch the caller's scores
    s[torch.isnan(s)] = -torch.inf
    if exclude is not None:
        _mask(s, exclude, single)
    values_t, items_t = top_rows(s, int(k))
    items, values = items_t.cpu().numpy(), values_t.cpu().numpy()
    if not single:
        return items, values
    keep = np.isfinite(values[0])
    return items[0][keep], values[0][keep]


def top_rows(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices), each ``(B, min(k, N))``, of the best entries of each row of ``(B, N)`` ``scores``
    (already masked: removed items hold ``-inf``; NaN must be set to ``-inf`` by the caller), best first,
    on the scores' device. Ties keep ``torch.topk``'s order: this is the one place lmrec ranks.

    >>> values, items = top_rows(torch.tensor([[0.5, 2.0, -torch.inf]]), 2)
    >>> items.tolist(), values.tolist()
    ([[1, 0]], [[2.0, 0.5]])
    """
    top = torch.topk(scores, min(int(k), scores.shape[1]), dim=1)
    return top.values, top.indices


def _mask(s: torch.Tensor, exclude: sp.spmatrix | np.ndarray, single: bool) -> None:
    """Set the excluded entries of ``s`` (B, N) to -inf, in place."""
    if single:
        if sp.issparse(exclude):
            raise ConfigError("top_k of one row takes 'exclude' as an array of item indices; got a sparse matrix.")
        index = np.asarray(exclude, dtype=np.int64).ravel()
        if index.size and (index.min() < -s.shape[1] or index.max() >= s.shape[1]):
            raise ConfigError(f"top_k: 'exclude' holds item indices outside [0, {s.shape[1]}).")
        if index.size:
            s[0, torch.as_tensor(index, device=s.device)] = -torch.inf
        return
    if not sp.issparse(exclude) or exclude.shape != tuple(s.shape):
        got = f"a {exclude.shape} sparse matrix" if sp.issparse(exclude) else type(exclude).__name__
        raise ConfigError(f"top_k of a batch takes 'exclude' as a {tuple(s.shape)} sparse matrix "
                          f"(one row of items per score row); got {got}.")
    mask_seen(s, sp.csr_matrix(exclude))
