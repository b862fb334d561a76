"""EASE: the closed-form linear item-item model of Steck (WWW 2019)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.data.interactions import Interactions
from lmrec.errors import check_positive
from lmrec.models.base import Recommender
from lmrec.sparse import csr_to_torch


class EASE(Recommender):
    """B = argmin ||X - XB||² + λ||B||² s.t. diag(B) = 0, solved in closed form.

    P = (XᵀX + λI)⁻¹;  B = I - P · diag(1 / diag(P));  score(u) = x_u B.
    (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.)

    Parameters
    ----------
    lam: the L2 weight λ; larger means smoother, more popularity-like scores.
    """

    name = "ease"

    def __init__(self, lam: float = 500.0) -> None:
        self.lam = lam

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        check_positive("EASE", "lam", self.lam)
        x = train.to_csr().astype(np.float64)
        gram = torch.from_numpy((x.T @ x).toarray())
        gram.diagonal().add_(self.lam)
        p = torch.linalg.inv(gram)  # (items, items), float64 for a stable inverse
        b = -p / torch.diagonal(p)[None, :]
        b.fill_diagonal_(0.0)
        self.weights_ = b.float()

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return csr_to_torch(history) @ self.weights_

    def _item_vectors(self) -> torch.Tensor:
        return self.weights_.T

    def _state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_.numpy()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = torch.from_numpy(arrays["weights"])
