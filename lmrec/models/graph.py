"""LightGCN-style propagation over the user-item graph, shared by LightGCN and LMRanker.

With Â = D^-1/2 A D^-1/2 on the bipartite graph, one layer is
``users' = Â_ui @ items`` and ``items' = Â_ui^T @ users``; the output is the mean of the
layer-0 .. layer-K representations (He et al., "LightGCN", SIGIR 2020).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch


def normalized_adjacency(matrix: sp.csr_matrix, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(Â_ui, Â_ui^T) as torch sparse CSR tensors, from a binary users x items matrix."""
    x = (matrix > 0).astype(np.float32).tocsr()
    du = np.asarray(x.sum(1)).ravel()
    di = np.asarray(x.sum(0)).ravel()
    inv_u = np.where(du > 0, 1.0 / np.sqrt(np.maximum(du, 1e-12)), 0.0).astype(np.float32)
    inv_i = np.where(di > 0, 1.0 / np.sqrt(np.maximum(di, 1e-12)), 0.0).astype(np.float32)
    norm = sp.diags(inv_u) @ x @ sp.diags(inv_i)
    return _to_torch(norm.tocsr(), device), _to_torch(norm.T.tocsr(), device)


def _to_torch(m: sp.csr_matrix, device: str | torch.device) -> torch.Tensor:
    return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                   torch.from_numpy(m.indices.astype(np.int64)),
                                   torch.from_numpy(m.data.astype(np.float32)), size=m.shape,
                                   check_invariants=False).to(device)


class _SparseProduct(torch.autograd.Function):
    """``a @ x`` for a constant sparse ``a`` whose transpose ``a_t`` is at hand: the backward is
    ``a_t @ grad``, one sparse product, where autograd's own backward through a sparse CSR product
    is about 25x slower than the forward on CPU (torch 2.13)."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.a_t = a_t
        return a @ x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, None, torch.Tensor]:
        return None, None, ctx.a_t @ grad


def propagate(adj: tuple[torch.Tensor, torch.Tensor], users: torch.Tensor, items: torch.Tensor,
              layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over layers 0..K of LightGCN propagation; users (U, d), items (I, d)."""
    a_ui, a_iu = adj
    out_u, out_i = [users], [items]
    u, i = users, items
    for _ in range(layers):
        u, i = _SparseProduct.apply(a_ui, a_iu, i), _SparseProduct.apply(a_iu, a_ui, u)
        out_u.append(u)
        out_i.append(i)
    return torch.stack(out_u).mean(0), torch.stack(out_i).mean(0)
