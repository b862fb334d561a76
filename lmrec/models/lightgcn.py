"""LightGCN: ID embeddings smoothed over the user-item graph, trained with a pairwise loss."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from lmrec.data.interactions import Interactions
from lmrec.errors import check_positive
from lmrec.losses import LOSSES
from lmrec.models.capabilities import Factorised
from lmrec.models.graph import normalized_adjacency, propagate
from lmrec.models.mf import LossPart, loss_as_part
from lmrec.models.trained import TrainedRecommender
from lmrec.options import resolve
from lmrec.training.config import TrainConfig
from lmrec.training.negatives import Negatives, negatives_from_config
from lmrec.training.pairwise import pairwise_step


class LightGCN(Factorised, TrainedRecommender):
    """score(u, i) = <e_u, e_i> with e = mean over K propagation layers of ID embeddings.

    He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
    Recommendation", SIGIR 2020. ID only: the text-free counterpart of ``LMRanker(graph_layers=K)``.

    Parameters
    ----------
    dim: embedding size. layers: propagation layers K.
    loss: a loss part of :mod:`lmrec.losses` (``BPR()``, ``Hinge(margin=0.5)``, ``Softmax()``, ...), its
        name ("bpr", "hinge", ...) or its saved dict (``{"type": "hinge", "margin": 0.5}``).
    reg: L2 weight on the layer-0 embeddings of the batch. config: TrainConfig for the loop.

    Example
    -------
    >>> model = LightGCN(dim=64, layers=3, loss=Hinge(margin=0.5)).fit(train, valid)  # doctest: +SKIP
    """

    name = "lightgcn"
    layout = 2  # 2: ``loss`` saved as its part; 1 saved ``loss`` (a name) and ``margin``
    upgrades = {1: loss_as_part}  # layout-1 models load as layout 2
    uses_history = False

    def __init__(self, dim: int = 64, layers: int = 2, loss: LossPart = "bpr", reg: float = 1e-4,
                 config: TrainConfig | dict[str, Any] | None = None) -> None:
        self.dim = dim
        self.layers = layers
        self.loss = loss
        self.reg = reg
        self.config = config

    def check_params(self) -> None:
        check_positive("LightGCN", "dim", self.dim)
        check_positive("LightGCN", "layers", self.layers, allow_zero=True)
        self.loss_ = resolve(LOSSES, self.loss, owner="LightGCN", param="loss")
        negatives_from_config(self._train_config())

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        cfg = self._train_config()
        torch.manual_seed(cfg.seed)
        self.module_ = nn.ModuleDict({"user_emb": nn.Embedding(self.n_users_, self.dim),
                                      "item_emb": nn.Embedding(self.n_items_, self.dim)}).to(cfg.device)
        for emb in self.module_.values():
            nn.init.normal_(emb.weight, std=0.1)
        self.adj_ = normalized_adjacency(self.train_matrix_, cfg.device)
        self.train_users_ = torch.as_tensor(train.users, device=cfg.device)
        step = pairwise_step(self._batch_scores, self.loss_, Negatives(train, cfg), train, cfg.device)
        self._run_training(step.task(self.module_), cfg, train, valid)

    def _embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return propagate(self.adj_, self.module_["user_emb"].weight, self.module_["item_emb"].weight, self.layers)

    def _batch_scores(self, rows: np.ndarray, pos: torch.Tensor,
                      neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        users_all, items_all = self._embeddings()
        users = self.train_users_[torch.as_tensor(rows)]
        items = torch.cat([pos[:, None], neg], dim=1)
        scores = torch.einsum("bd,bmd->bm", users_all[users], items_all[items])
        e_u, e_i = self.module_["user_emb"](users), self.module_["item_emb"](items)
        reg = self.reg * (e_u.pow(2).sum(1).mean() + e_i.pow(2).sum(2).mean(0).sum())
        return scores[:, 0], scores[:, 1:], reg

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        with torch.no_grad():
            u, i = self._embeddings()
            return (u[torch.as_tensor(users, device=u.device)] @ i.T).float().cpu()

    def _item_vectors(self) -> torch.Tensor:
        with torch.no_grad():
            return self._embeddings()[1].cpu()

    @torch.no_grad()
    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        u, i = self._embeddings()
        return u.cpu(), i.cpu()

    def _state(self) -> dict[str, np.ndarray]:
        return {k: v.weight.detach().cpu().numpy() for k, v in self.module_.items()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.module_ = nn.ModuleDict({k: nn.Embedding.from_pretrained(torch.from_numpy(arrays[k]), freeze=False)
                                      for k in ("user_emb", "item_emb")})
        self.adj_ = normalized_adjacency(self.train_matrix_)
