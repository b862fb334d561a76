"""Detecting fake (shilling) profiles among users, for the robustness study's defence.

Two classic per-user statistics (Chirita et al., "Preventing shilling attacks in online
recommender systems", WIDM 2005; Williams, Mobasher & Burke 2007), each as a robust z-score
(median and MAD over all users):

* DegSim: mean cosine similarity of a user's binary profile to its ``k`` most similar users.
  Fake profiles built from one template (the same targets, popular or random fillers) sit close
  to one another;
* RDMA (rating deviation from mean agreement): mean over a user's items of
  |r_ui - mean_i| / (ratings of i). Fillers rated at random deviate from the items' means. It
  carries nothing on implicit data (every rating 1) and is then 0 for everyone.

A user is flagged when the larger of the two z-scores exceeds ``threshold``. The defence removes
flagged users' interactions before training; the study reports what it catches and what it
costs on clean data.

With ``reference`` users (users already trusted, e.g. those a served model was trained on), the
normal range comes from them alone: their DegSim is taken among one another, their ratings give
the items' means, and the median and MAD are theirs. Users outside the reference (a round's new
users) are scored against everyone, so fakes built from one template still find one another, but
however many of them arrive they cannot move the median or widen the MAD that judges them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lmrec.data.interactions import Interactions
from lmrec.errors import ConfigError, check_positive


@dataclass(frozen=True)
class Detection:
    """``flagged`` (U,) bool; ``score`` (U,) the larger robust z-score; ``degsim``, ``rdma`` the raw statistics."""

    flagged: np.ndarray
    score: np.ndarray
    degsim: np.ndarray
    rdma: np.ndarray


def robust_z(x: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """(x - median) / (1.4826 MAD), median and MAD over ``x[reference]`` (default: all of ``x``);
    a constant reference gives zeros."""
    ref = x if reference is None else x[reference]
    if reference is not None and not len(ref):
        raise ConfigError("robust_z: the 'reference' selects no value; expected at least one reference user.")
    med = np.median(ref)
    mad = 1.4826 * np.median(np.abs(ref - med))
    return (x - med) / mad if mad > 0 else np.zeros_like(x, dtype=np.float64)


def degsim(binary: sp.csr_matrix, k: int = 10, chunk: int = 1024, *, rows: np.ndarray | None = None,
           among: np.ndarray | None = None) -> np.ndarray:
    """Mean cosine similarity of each of ``rows`` (default: every user) to its ``k`` nearest other
    users among ``among`` (default: every user); (len(rows),)."""
    n = binary.shape[0]
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    among = np.arange(n) if among is None else np.asarray(among, dtype=np.int64)
    norms = np.sqrt(np.asarray(binary.multiply(binary).sum(axis=1)).reshape(-1))
    x = sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ binary)
    xt = x[among].T.tocsr()
    out = np.zeros(len(rows))
    position = np.full(n, -1)
    position[among] = np.arange(len(among))  # where each user sits among the neighbours, -1: not there
    for lo in range(0, len(rows), chunk):
        part = rows[lo: lo + chunk]
        sims = (x[part] @ xt).toarray()  # (chunk, len(among))
        own = position[part]
        inside = own >= 0
        sims[np.flatnonzero(inside), own[inside]] = -np.inf  # not oneself
        kk = min(k, len(among) - int(inside.any()))
        if kk <= 0:
            continue
        top = np.partition(sims, -kk, axis=1)[:, -kk:]
        out[lo: lo + len(part)] = np.where(np.isfinite(top), top, 0.0).mean(axis=1)
    return out


def rdma(data: Interactions, reference: np.ndarray | None = None) -> np.ndarray:
    """(U,) rating deviation from mean agreement; items' means and counts from the ``reference``
    users' ratings (default: everyone's)."""
    ref = np.ones(len(data), bool) if reference is None else _mask(reference, data.n_users)[data.users]
    n_i = np.bincount(data.items[ref], minlength=data.n_items).astype(np.float64)
    mean_i = np.bincount(data.items[ref], weights=data.ratings[ref], minlength=data.n_items) / np.maximum(n_i, 1)
    dev = np.abs(data.ratings - mean_i[data.items]) / np.maximum(n_i[data.items], 1)
    n_u = np.bincount(data.users, minlength=data.n_users)
    return np.bincount(data.users, weights=dev, minlength=data.n_users) / np.maximum(n_u, 1)


def detect_fake_users(data: Interactions, threshold: float = 3.5, k: int = 10,
                      reference: np.ndarray | None = None) -> Detection:
    """Flag users whose DegSim or RDMA robust z-score exceeds ``threshold``.

    ``reference``: user indices (or a bool mask over users) whose statistics set the normal range
    (see the module docstring); default every user.

    >>> found = detect_fake_users(data, reference=np.arange(n_known))   # doctest: +SKIP
    >>> new_fakes = np.flatnonzero(found.flagged[n_known:]) + n_known   # doctest: +SKIP
    """
    check_positive("detect_fake_users", "threshold", threshold)
    check_positive("detect_fake_users", "k", k)
    binary = data.to_csr()
    if reference is None:
        ds = degsim(binary, k)
        ref = None
    else:
        ref = np.flatnonzero(_mask(reference, data.n_users))
        if not len(ref):
            raise ConfigError("detect_fake_users: 'reference' selects no user; expected at least one reference user.")
        others = np.setdiff1d(np.arange(data.n_users), ref)
        ds = np.zeros(data.n_users)
        ds[ref] = degsim(binary, k, rows=ref, among=ref)  # the normal range, among trusted users only
        ds[others] = degsim(binary, k, rows=others)  # everyone else, against everyone
    rd = rdma(data, ref)
    score = np.maximum(robust_z(ds, ref), robust_z(rd, ref))
    return Detection(score > threshold, score, ds, rd)


def _mask(users: np.ndarray, n: int) -> np.ndarray:
    """A bool mask over ``n`` users from a mask or an index array."""
    users = np.asarray(users)
    if users.dtype == bool:
        if len(users) != n:
            raise ConfigError(f"a user mask must have one entry per user ({n}); got {len(users)}.")
        return users
    if users.size and (users.min() < 0 or users.max() >= n):
        raise ConfigError(f"user indices must lie in [0, {n}); got {int(users.min())}..{int(users.max())}.")
    mask = np.zeros(n, bool)
    mask[users.astype(np.int64)] = True
    return mask
