"""LightGCN-style propagation over the user-item graph, shared by LightGCN and LMRanker.

With Â = D^-1/2 A D^-1/2 on the bipartite graph, one layer is
``users' = Â_ui @ items`` and ``items' = Â_ui^T @ users``; the output is the mean of the
layer-0 .. layer-K representations (He et al., "LightGCN", SIGIR 2020).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.sparse import csr_to_torch_csr, sparse_product


def normalized_adjacency(matrix: sp.csr_matrix, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(Â_ui, Â_ui^T) as torch sparse CSR tensors, from a binary users x items matrix."""
    x = (matrix > 0).astype(np.float32).tocsr()
    du = np.asarray(x.sum(1)).ravel()
    di = np.asarray(x.sum(0)).ravel()
    inv_u = np.where(du > 0, 1.0 / np.sqrt(np.maximum(du, 1e-12)), 0.0).astype(np.float32)
    inv_i = np.where(di > 0, 1.0 / np.sqrt(np.maximum(di, 1e-12)), 0.0).astype(np.float32)
    norm = sp.diags(inv_u) @ x @ sp.diags(inv_i)
    return csr_to_torch_csr(norm.tocsr(), device), csr_to_torch_csr(norm.T.tocsr(), device)


def propagate(adj: tuple[torch.Tensor, torch.Tensor], users: torch.Tensor, items: torch.Tensor,
              layers: int, users_out: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Mean over layers 0..K of LightGCN propagation; users (U, d), items (I, d).

    ``users_out=False`` returns None for the users and skips the last layer's user product, which
    only the users' output reads.
    """
    a_ui, a_iu = adj
    out_u, out_i = [users], [items]
    u, i = users, items
    for layer in range(1, layers + 1):
        u_next = sparse_product(a_ui, a_iu, i) if users_out or layer < layers else None
        i = sparse_product(a_iu, a_ui, u)
        u = u_next
        out_u.append(u)
        out_i.append(i)
    return (torch.stack(out_u).mean(0) if users_out else None), torch.stack(out_i).mean(0)
