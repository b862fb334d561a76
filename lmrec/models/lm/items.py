"""The item tower: text embedding -> projection [+ item ID] [-> graph propagation].

Shapes: N items, U users, T text embedding size (384 for MiniLM), d the model dimension.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lmrec.errors import ConfigError, check_choice
from lmrec.models.graph import propagate
from lmrec.options import Options

Adjacency = tuple[torch.Tensor, torch.Tensor]


@dataclass
class ItemTower(Options):
    """Item representations v_i = P(e_i) [+ id_i], optionally smoothed over the user-item graph.

    dim: representation size d (the user tower's too); None: the text size T of whichever encoder
        the model is given (384 for MiniLM, 768 for MPNet), as ``identity_init`` needs.
    projection: "linear" or "mlp" (Linear(T, 2d) -> GELU -> dropout -> Linear(2d, d)).
    dropout: dropout inside the MLP projection.
    ids: add a learned ID embedding per training item (zero for items added later: text alone).
    history_ids: a second ID table for an item's role in users' histories (asymmetric roles, as in
        FISM, Kabbur et al. 2013): h_j = v_j + hid_j. Needs ``ids``.
    graph_layers: LightGCN-style propagation layers K (He et al. 2020): v + mean of layers 1..K
        (0: none). An item without interactions keeps its text representation.
    identity_init: the linear projection starts as the identity (``dim`` must be None or equal the
        text size): training starts from the encoder's own space — with the mean tower and
        the cosine scorer, from text-kNN — and learns corrections to it.
    """

    dim: int | None = 64
    projection: str = "linear"
    dropout: float = 0.1
    ids: bool = False
    history_ids: bool = False
    graph_layers: int = 0
    identity_init: bool = False

    def validate(self) -> None:
        if self.dim is not None:
            self.check_range("dim", 1)
        check_choice("ItemTower", "projection", self.projection, ["linear", "mlp"])
        self.check_range("dropout", 0.0, 1.0)
        self.check_range("graph_layers", 0)
        if self.history_ids and not self.ids:
            raise ConfigError("ItemTower: history_ids=True needs item IDs (ids=True); got ids=False.")
        if self.identity_init and self.projection != "linear":
            raise ConfigError(f"ItemTower: identity_init=True needs projection='linear'; got {self.projection!r}.")

    def build(self, text_dim: int, n_items: int) -> ItemTowerModule:
        return ItemTowerModule(self, text_dim, n_items)


def zero_embedding(n: int, dim: int) -> nn.Embedding:
    """An ID table that starts at zero: an item never trained keeps a zero ID part (text alone)."""
    emb = nn.Embedding(n, dim)
    nn.init.zeros_(emb.weight)
    return emb


class ItemTowerModule(nn.Module):
    def __init__(self, options: ItemTower, text_dim: int, n_items: int) -> None:
        super().__init__()
        d = options.dim or text_dim
        self.dim = d  # the model dimension, resolved against the text size
        self.layers = options.graph_layers
        if options.projection == "linear":
            self.proj: nn.Module = nn.Linear(text_dim, d)
            if options.identity_init:
                if d != text_dim:
                    raise ConfigError(f"ItemTower: identity_init=True needs dim equal to the text size {text_dim}; "
                                      f"got dim={d}.")
                with torch.no_grad():
                    self.proj.weight.copy_(torch.eye(d))
                    self.proj.bias.zero_()
        else:
            self.proj = nn.Sequential(nn.Linear(text_dim, 2 * d), nn.GELU(), nn.Dropout(options.dropout),
                                      nn.Linear(2 * d, d))
        self.item_id = zero_embedding(n_items, d) if options.ids else None
        self.history_id = zero_embedding(n_items, d) if options.history_ids else None

    def forward(self, text: torch.Tensor, adj: Adjacency | None = None,
                users0: torch.Tensor | None = None) -> torch.Tensor:
        """(N, d) item representations from text embeddings (N, T); ``adj`` the normalised graph,
        ``users0`` (U, d) the users' layer-0 representations (zeros when None)."""
        v = self.proj(text)
        if self.item_id is not None:
            v = v + self.item_id.weight
        if adj is None or self.layers == 0:
            return v
        if users0 is None:
            users0 = torch.zeros(adj[0].shape[0], v.shape[1], device=v.device, dtype=v.dtype)
        _, smoothed = propagate(adj, users0, v, self.layers, users_out=False)  # mean of layers 0..K
        # rescale so the propagated part is the mean of layers 1..K added to v: a cold item
        # (no edges) keeps exactly its text representation
        return v + (smoothed * (self.layers + 1) - v) / self.layers

    @property
    def per_item(self) -> bool:
        """Whether an item's representation depends on its own text and ID only (no propagation),
        so a training step may compute the rows of a batch's items alone (:meth:`project`)."""
        return self.layers == 0

    @property
    def linear(self) -> bool:
        """Whether v is affine in the text embedding (linear projection, no propagation): then the
        mean of items' representations is the projection of their mean text, plus their mean ID part."""
        return self.per_item and isinstance(self.proj, nn.Linear)

    def project(self, text: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """(..., d) representations of items ``index`` (...) from their text rows ``text`` (..., T);
        only for a per-item tower (:attr:`per_item`)."""
        v = self.proj(text)
        return v if self.item_id is None else v + self.item_id(index)

    def rows(self, text: torch.Tensor, index: torch.Tensor, n_items: int) -> torch.Tensor:
        """(n_items, d) holding the representations of items ``index`` (k,) from their text rows
        ``text`` (k, T), zero elsewhere (a training step over a large catalogue projects only the
        items it reads)."""
        v = self.project(text, index)
        return v.new_zeros(n_items, v.shape[1]).index_copy(0, index, v)

    def id_parts(self) -> torch.Tensor | None:
        """(N, d) the ID part an item adds in a history (item ID + history ID), or None without IDs."""
        parts = [emb.weight for emb in (self.item_id, self.history_id) if emb is not None]
        return None if not parts else parts[0] if len(parts) == 1 else parts[0] + parts[1]

    def history(self, v: torch.Tensor) -> torch.Tensor:
        """(N, d) items as a user tower reads them in a history: ``v`` plus the history ID part."""
        return v if self.history_id is None else v + self.history_id.weight

    def grow(self, n_new: int) -> None:
        """Append ``n_new`` zero ID rows (items added after training)."""
        for emb in (self.item_id, self.history_id):
            if emb is not None:
                emb.weight = nn.Parameter(torch.cat([emb.weight.data, emb.weight.new_zeros(n_new, emb.weight.shape[1])]))
