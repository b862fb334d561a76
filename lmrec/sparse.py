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
