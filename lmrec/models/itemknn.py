"""ItemKNN: item-item cosine similarity, pruned to the top neighbours."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.data.interactions import Interactions
from lmrec.errors import check_positive
from lmrec.models.base import Recommender
from lmrec.sparse import csr_to_torch


class ItemKNN(Recommender):
    """Score(u, i) = sum over the user's history items j of sim(j, i), sim pruned to top ``k``.

    sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i|) sqrt(|U_j|) + shrink)  (cosine with shrinkage).

    Parameters
    ----------
    k: neighbours kept per item.
    shrink: shrinkage added to the cosine denominator (damps pairs with little support).
    """

    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 0.0) -> None:
        self.k = k
        self.shrink = shrink

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        check_positive("ItemKNN", "k", self.k)
        check_positive("ItemKNN", "shrink", self.shrink, allow_zero=True)
        x = train.to_csr().astype(np.float32)
        co = torch.from_numpy((x.T @ x).toarray())  # items x items co-occurrence
        norms = torch.sqrt(torch.diagonal(co)).clamp_min(1e-12)
        sim = co / (norms[:, None] * norms[None, :] + self.shrink)
        sim.fill_diagonal_(0.0)
        k = min(self.k, sim.shape[0] - 1)
        top = torch.topk(sim, k, dim=0)  # top-k neighbours j for each target item (columns)
        rows = top.indices.numpy().ravel(order="F")
        cols = np.repeat(np.arange(sim.shape[1]), k)
        vals = top.values.numpy().ravel(order="F")
        keep = vals > 0
        self.similarity_ = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=sim.shape)

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return csr_to_torch(history @ self.similarity_)

    def item_similarity(self, items: np.ndarray) -> torch.Tensor:
        sym = self.similarity_.maximum(self.similarity_.T)
        return csr_to_torch(sym[items])

    def _state(self) -> dict[str, np.ndarray]:
        s = self.similarity_
        return {"sim.indptr": s.indptr.astype(np.int64), "sim.indices": s.indices.astype(np.int64),
                "sim.data": s.data.astype(np.float32)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        n = self.n_items_
        self.similarity_ = sp.csr_matrix((arrays["sim.data"], arrays["sim.indices"], arrays["sim.indptr"]), shape=(n, n))
