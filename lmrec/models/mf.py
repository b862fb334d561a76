"""BPR-MF: matrix factorisation trained with a ranking loss part (:mod:`lmrec.losses`: BPR, Hinge, ...)."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from lmrec.data.interactions import Interactions
from lmrec.errors import check_positive
from lmrec.losses import LOSSES, Hinge, Loss
from lmrec.models.capabilities import Factorised
from lmrec.models.trained import TrainedRecommender
from lmrec.options import resolve
from lmrec.training.config import TrainConfig
from lmrec.training.negatives import Negatives, negatives_from_config
from lmrec.training.pairwise import pairwise_step

LossPart = Loss | str | dict[str, Any]  # a loss part, its registry name, or its saved dict


class _MF(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        self.users = nn.Embedding(n_users, dim)
        self.items = nn.Embedding(n_items, dim)
        self.bias = nn.Embedding(n_items, 1)  # item bias (used when item_bias=True)
        nn.init.normal_(self.users.weight, std=0.1)  # small random start, as in Rendle et al.
        nn.init.normal_(self.items.weight, std=0.1)
        nn.init.zeros_(self.bias.weight)


DENSE_SHARE = 4  # a step scores the whole catalogue once its candidates per row reach a quarter of it


def loss_as_part(params: dict[str, Any]) -> dict[str, Any]:
    """Layout-1 parameters of BPR-MF or LightGCN in layout 2: ``loss`` (a name) and ``margin`` side by
    side become one loss part, ``{"type": "hinge", "margin": m}`` for the hinge (other losses had no use
    for the margin and keep their name)."""
    out = dict(params)
    margin = out.pop("margin", 1.0)
    if out.get("loss", "bpr") == "hinge":
        out["loss"] = Hinge(margin=margin).to_dict()
    return out


class BPRMF(Factorised, TrainedRecommender):
    """score(u, i) = <p_u, q_i> [+ b_i], trained on (user, positive, sampled negatives).

    loss :class:`BPR`: -log σ(s_pos - s_neg) (Rendle et al., UAI 2009); :class:`Hinge`\\ (margin):
    max(0, margin - (s_pos - s_neg)). Regularisation: ``reg`` × mean squared norm of the embeddings in the batch.

    Parameters
    ----------
    dim: embedding size.
    loss: a loss part of :mod:`lmrec.losses` -- ``BPR()``, ``Hinge(margin=0.5)``, ``Softmax()``, the pointwise
        ``PointwiseBCE()`` and ``PointwiseHinge()`` -- or its name ("bpr", "hinge", ...) or saved dict
        (``{"type": "hinge", "margin": 0.5}``, as in a model spec ``bpr-mf:{"loss": {...}}``).
    reg: L2 weight on the batch embeddings.
    item_bias: add a learned per-item bias b_i (captures popularity).
    config: a :class:`TrainConfig` (or its dict) for the loop: epochs, lr, negatives, early stopping.

    Example
    -------
    >>> model = BPRMF(dim=64, loss=Hinge(margin=0.5), config=TrainConfig(epochs=20)).fit(train, valid)  # doctest: +SKIP
    """

    name = "bpr-mf"
    layout = 2  # 2: ``loss`` saved as its part; 1 saved ``loss`` (a name) and ``margin``
    upgrades = {1: loss_as_part}  # layout-1 models load as layout 2
    uses_history = False  # a user's embedding is fixed at fit time; newer history is not used

    def __init__(self, dim: int = 64, loss: LossPart = "bpr", reg: float = 1e-4, item_bias: bool = False,
                 config: TrainConfig | dict[str, Any] | None = None) -> None:
        self.dim = dim
        self.loss = loss
        self.reg = reg
        self.item_bias = item_bias
        self.config = config

    def check_params(self) -> None:
        check_positive("BPRMF", "dim", self.dim)
        check_positive("BPRMF", "reg", self.reg, allow_zero=True)
        self.loss_ = resolve(LOSSES, self.loss, owner="BPRMF", param="loss")
        negatives_from_config(self._train_config())

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        cfg = self._train_config()
        torch.manual_seed(cfg.seed)
        self.module_ = _MF(self.n_users_, self.n_items_, self.dim).to(cfg.device)
        self.train_users_ = torch.as_tensor(train.users, device=cfg.device)  # user of each training row
        step = pairwise_step(self._batch_scores, self.loss_, Negatives(train, cfg), train, cfg.device)
        self._run_training(step.task(self.module_), cfg, train, valid)

    def _batch_scores(self, rows: np.ndarray, pos: torch.Tensor,
                      neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.module_.users(self.train_users_[torch.as_tensor(rows)])  # (B, d)
        items = torch.cat([pos[:, None], neg], dim=1)  # (B, 1 + m)
        weight = self.module_.items.weight  # (N, d)
        if items.shape[1] * DENSE_SHARE >= len(weight):
            # negatives over (most of) the catalogue: score every item once, (B, N), and gather;
            # the per-row lookup below would build a (B, 1 + m, d) tensor
            scores = torch.gather(p @ weight.T, 1, items)
            q_norms = weight.pow(2).sum(1)[items]  # (B, 1 + m)
        else:
            q = self.module_.items(items)  # (B, 1 + m, d)
            scores = torch.einsum("bd,bmd->bm", p, q)
            q_norms = q.pow(2).sum(2)
        if self.item_bias:
            scores = scores + self.module_.bias(items).squeeze(-1)
        reg = self.reg * (p.pow(2).sum(1).mean() + q_norms.mean(0).sum())
        return scores[:, 0], scores[:, 1:], reg

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        with torch.no_grad():
            dev = self.module_.users.weight.device
            p = self.module_.users(torch.as_tensor(users, device=dev))
            scores = p @ self.module_.items.weight.T
            if self.item_bias:
                scores = scores + self.module_.bias.weight.T
            return scores.float().cpu()

    def _item_vectors(self) -> torch.Tensor:
        return self.module_.items.weight.detach().cpu()

    @torch.no_grad()
    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        u, v = self.module_.users.weight.detach().cpu(), self.module_.items.weight.detach().cpu()
        if self.item_bias:  # s = p·q + b  ==  [p, 1]·[q, b]
            u = torch.cat([u, torch.ones(len(u), 1)], dim=1)
            v = torch.cat([v, self.module_.bias.weight.detach().cpu()], dim=1)
        return u, v

    def _state(self) -> dict[str, np.ndarray]:
        return {"users": self.module_.users.weight.detach().cpu().numpy(),
                "items": self.module_.items.weight.detach().cpu().numpy(),
                "bias": self.module_.bias.weight.detach().cpu().numpy()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.module_ = _MF(self.n_users_, self.n_items_, self.dim)
        self.module_.users.weight.data = torch.from_numpy(arrays["users"])
        self.module_.items.weight.data = torch.from_numpy(arrays["items"])
        self.module_.bias.weight.data = torch.from_numpy(arrays["bias"])
        self.module_.eval()

