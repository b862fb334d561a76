"""Small helpers between scipy sparse matrices and torch tensors."""
from __future__ import annotations

import warnings
from typing import Any

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


def csr_to_torch_csr(m: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor (float32)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the products used here are stable
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                       torch.from_numpy(m.indices.astype(np.int64)),
                                       torch.from_numpy(m.data.astype(np.float32)), size=m.shape,
                                       check_invariants=False).to(device)


def _full_precision_product(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a @ x`` in ``a``'s precision, outside any autocast (sparse kernels have no bfloat16)."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return a @ x.to(a.dtype)


class _SparseProduct(torch.autograd.Function):
    """``a @ x`` for a constant sparse ``a`` whose transpose ``a_t`` is at hand: the backward is
    ``a_t @ grad``, one sparse product, where autograd's own backward through a sparse product is
    several times slower than the forward on CPU (about 25x for CSR, torch 2.13). A lower-precision
    ``x`` (bf16 autocast) is multiplied in ``a``'s precision; its gradient comes back in its own."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.a_t, ctx.x_dtype = a_t, x.dtype
        return _full_precision_product(a, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, None, torch.Tensor]:
        return None, None, _full_precision_product(ctx.a_t, grad).to(ctx.x_dtype)


def sparse_product(a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a @ x`` (``a`` a constant torch sparse matrix, ``a_t`` its transpose), differentiable in ``x``."""
    return _SparseProduct.apply(a, a_t, x)


def csr_product(m: sp.csr_matrix, x: torch.Tensor) -> torch.Tensor:
    """``m @ x`` for a constant scipy CSR ``m``, in float32 whatever ``x``'s precision;
    differentiable in ``x`` (the transpose is built only then)."""
    a = csr_to_torch_csr(m, x.device)
    if not (torch.is_grad_enabled() and x.requires_grad):
        return _full_precision_product(a, x)
    return sparse_product(a, csr_to_torch_csr(m.T.tocsr(), x.device), x)
