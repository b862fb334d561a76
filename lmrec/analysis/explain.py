"""Why did a model score an item for a user: history items and text fields, with their shares.

History items (models whose scores follow the history): leave-one-out,
``contribution_j = s(history) - s(history without j)``; for a mean user tower with a dot scorer
this is close to the exact split of the score into per-item parts. Models that embed users at
fit time (BPR-MF, LightGCN) do not read the history when scoring, so their explanation lists
the history items most similar to the item (cosine of item vectors) and says so in ``method``.

Text fields (text models): leave-one-field-out on the item's own text,
``contribution_f = s(text) - s(text with field f blank)``, scored through the item projection.

Shares are the positive contributions divided by their sum (negative ones get share 0).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from lmrec.models.base import Recommender
from lmrec.models.capabilities import ExplainsFields, NewUsers


@dataclass
class Explanation:
    user: Any  # as asked: a raw id, or an index with ids="index"
    item: Any
    score: float
    method: str  # "leave-one-out" or "similarity"
    history: list[dict[str, Any]] = field(default_factory=list)  # item, contribution, share
    fields: list[dict[str, Any]] = field(default_factory=list)  # field, value, contribution, share

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shares(contrib: np.ndarray) -> np.ndarray:
    pos = np.clip(contrib, 0.0, None)
    total = pos.sum()
    return pos / total if total > 0 else np.zeros_like(contrib)


def history_contributions(model: Recommender, user: int, item: int, history: sp.csr_matrix,
                          chunk: int = 512) -> tuple[np.ndarray, np.ndarray, str]:
    """(history item indices, contributions, method) for one user row ``history`` (1, N)."""
    items = history.indices.copy()
    if not model.uses_history:
        sims = model.item_similarity(np.array([item]))[0].numpy()
        return items, sims[items], "similarity"
    full = float(model.score_rows(np.array([user]), history)[0, item])
    out = np.empty(len(items), dtype=np.float64)
    for lo in range(0, len(items), chunk):
        block = np.arange(lo, min(lo + chunk, len(items)))
        rows = sp.vstack([history] * len(block), format="lil")
        for r, j in enumerate(block):
            rows[r, items[j]] = 0
        rows = sp.csr_matrix(rows)
        rows.eliminate_zeros()
        scores = model.score_rows(np.full(len(block), user), rows)[:, item].numpy()
        out[block] = full - scores
    return items, out, "leave-one-out"


def explain(model: Recommender, user: Any, item: Any, top: int = 5, history: sp.csr_matrix | None = None,
            user_vector: Any = None, *, ids: str = "raw") -> Explanation:
    """Explain ``model``'s score of ``item`` for ``user`` (raw ids; ``ids="index"``: indices, and the
    explanation then names items by index too); ``history`` defaults to the training row.

    Example
    -------
    >>> e = explain(model, user=1, item=260)      # doctest: +SKIP
    >>> e.history[0]                               # doctest: +SKIP
    {'item': 1196, 'contribution': 0.41, 'share': 0.38}
    """
    raw_user, raw_item = user, item
    user, item = int(model.user_indices([user], ids)[0]), int(model.item_indices([item], ids)[0])
    row = model.train_matrix_[user] if history is None else history
    score = float(model.score_rows(np.array([user]), row)[0, item])
    items, contrib, method = history_contributions(model, user, item, row)
    order = np.argsort(-contrib, kind="stable")[:top]
    shares = _shares(contrib)
    named = model.item_ids(items[order], ids).tolist()
    hist = [{"item": name, "contribution": float(contrib[j]), "share": float(shares[j])} for name, j in zip(named, order)]
    fields: list[dict[str, Any]] = []
    if isinstance(model, ExplainsFields) and isinstance(model, NewUsers):
        if user_vector is None:
            user_vector = model.new_user_vector(row.indices[np.argsort(row.data, kind="stable")], ids="index")
        names, values, fcontrib = model.field_contributions(user_vector, item)
        fshares = _shares(np.asarray(fcontrib))
        fields = [{"field": n, "value": v, "contribution": float(c), "share": float(s)}
                  for n, v, c, s in zip(names, values, fcontrib, fshares)]
        fields.sort(key=lambda f: -f["contribution"])
    return Explanation(user=raw_user, item=raw_item, score=score, method=method, history=hist, fields=fields)
