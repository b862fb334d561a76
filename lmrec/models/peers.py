"""Peers: models of the libraries our users know, under lmrec's splits, evaluator and contract.

* ``implicit`` -- Ben Frederickson's implicit (``algorithm="bpr"`` or ``"als"``);
* ``cornac`` -- Cornac's BPR (Salah et al., JMLR 2020).

Both learn user and item factors from the training interactions (binary), so they score as
``U[users] @ V.T`` (:class:`~lmrec.models.capabilities.Factorised`) and, like BPR-MF, do not
read a newer history when scoring. Install with ``pip install 'lmrec[peers]'``; without the
package, ``fit`` says which extra is missing. Saved as safetensors like every lmrec model.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.data.interactions import Interactions
from lmrec.errors import check_choice, check_positive
from lmrec.extras import needs, require
from lmrec.models.base import Recommender
from lmrec.models.capabilities import Factorised

UNKNOWN = -1e4  # a bias for items a peer never saw in training: ranked after every known item


class FactorPeer(Factorised, Recommender):
    """What both adapters share: factors learnt by another library, scored and saved here."""

    uses_history = False

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return self.user_factors_[torch.as_tensor(users)] @ self.item_factors_.T

    def _item_vectors(self) -> torch.Tensor:
        return self.item_factors_

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_factors_, self.item_factors_

    def _state(self) -> dict[str, np.ndarray]:
        return {"users": self.user_factors_.numpy(), "items": self.item_factors_.numpy()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors_ = torch.from_numpy(np.ascontiguousarray(arrays["users"], dtype=np.float32))
        self.item_factors_ = torch.from_numpy(np.ascontiguousarray(arrays["items"], dtype=np.float32))


class ImplicitModel(FactorPeer):
    """implicit's BPR or ALS. dim: factors d (BPR adds one for the item bias); iterations: epochs
    (BPR) or sweeps (ALS); alpha: ALS confidence scaling; threads 0: all cores."""

    name = "implicit"

    def __init__(self, algorithm: str = "bpr", dim: int = 64, iterations: int = 100, learning_rate: float = 0.01,
                 regularization: float = 0.01, alpha: float = 1.0, seed: int = 2026, threads: int = 0) -> None:
        self.algorithm = algorithm
        self.dim = dim
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.alpha = alpha
        self.seed = seed
        self.threads = threads

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        check_choice("ImplicitModel", "algorithm", self.algorithm, ["bpr", "als"])
        for name in ("dim", "iterations"):
            check_positive("ImplicitModel", name, getattr(self, name))
        with needs("peers", "the implicit model"):
            from implicit.cpu.als import AlternatingLeastSquares
            from implicit.cpu.bpr import BayesianPersonalizedRanking

        if self.algorithm == "bpr":
            model = BayesianPersonalizedRanking(factors=self.dim, learning_rate=self.learning_rate,
                                                regularization=self.regularization, iterations=self.iterations,
                                                num_threads=self.threads, random_state=self.seed)
        else:
            model = AlternatingLeastSquares(factors=self.dim, regularization=self.regularization,
                                            alpha=self.alpha, iterations=self.iterations, num_threads=self.threads,
                                            random_state=self.seed)
        model.fit(sp.csr_matrix(train.to_csr(), dtype=np.float32), show_progress=False)
        self.user_factors_ = torch.from_numpy(np.ascontiguousarray(model.user_factors, dtype=np.float32))
        self.item_factors_ = torch.from_numpy(np.ascontiguousarray(model.item_factors, dtype=np.float32))


class CornacBPR(FactorPeer):
    """Cornac's BPR. dim: factors; max_iter: epochs; items Cornac never saw rank last."""

    name = "cornac"

    def __init__(self, dim: int = 64, max_iter: int = 100, learning_rate: float = 0.001, lambda_reg: float = 0.01,
                 seed: int = 2026) -> None:
        self.dim = dim
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.lambda_reg = lambda_reg
        self.seed = seed

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        for name in ("dim", "max_iter"):
            check_positive("CornacBPR", name, getattr(self, name))
        cornac = require("cornac", "peers", "the cornac model")

        csr = train.to_csr().tocoo()
        triples = [(str(u), str(i), 1.0) for u, i in zip(csr.row, csr.col)]
        data = cornac.data.Dataset.from_uir(triples, seed=self.seed)
        model = cornac.models.BPR(k=self.dim, max_iter=self.max_iter, learning_rate=self.learning_rate,
                                  lambda_reg=self.lambda_reg, seed=self.seed, verbose=False)
        model.fit(data)
        users = np.zeros((self.n_users_, self.dim + 1), dtype=np.float32)
        items = np.zeros((self.n_items_, self.dim + 1), dtype=np.float32)
        items[:, -1] = UNKNOWN
        u_rows = np.array([int(u) for u in data.uid_map], dtype=np.int64)
        i_rows = np.array([int(i) for i in data.iid_map], dtype=np.int64)
        u_idx = np.array(list(data.uid_map.values()), dtype=np.int64)
        i_idx = np.array(list(data.iid_map.values()), dtype=np.int64)
        users[u_rows, :-1] = model.u_factors[u_idx]
        users[:, -1] = 1.0  # s = u · v + b_i  ==  [u, 1] · [v, b]
        items[i_rows, :-1] = model.i_factors[i_idx]
        items[i_rows, -1] = model.i_biases[i_idx]
        self.user_factors_, self.item_factors_ = torch.from_numpy(users), torch.from_numpy(items)
