"""Small helpers between scipy sparse matrices and torch tensors."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def mask_seen(scores: torch.Tensor, seen: sp.csr_matrix) -> None:
    """Set ``scores[r, i] = -inf`` for every nonzero ``(r, i)`` of ``seen`` (in place)."""
    coo = seen.tocoo()
    if coo.nnz:
        rows = torch.as_tensor(coo.row, dtype=torch.long, device=scores.device)
        cols = torch.as_tensor(coo.col, dtype=torch.long, device=scores.device)
        scores[rows, cols] = -torch.inf


def csr_to_torch(m: sp.csr_matrix) -> torch.Tensor:
    """A scipy CSR matrix as a dense float32 tensor (batches are small enough to densify)."""
    return torch.from_numpy(np.asarray(m.toarray(), dtype=np.float32))


def csr_to_torch_sparse(m: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A scipy sparse matrix as a torch sparse COO tensor (differentiable in ``torch.sparse.mm``)."""
    coo = m.tocoo()
    idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(coo.data.astype(np.float32)), m.shape,
                                   check_invariants=False).to(device)
