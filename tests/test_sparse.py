"""Sparse helpers: the CSR product and its hand-written backward match dense algebra."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.sparse import csr_product, csr_to_torch_csr


def test_csr_product_and_its_gradient_match_dense_algebra():
    rng = np.random.default_rng(0)
    m = sp.csr_matrix((rng.random((5, 8)) < 0.3) * rng.random((5, 8)), dtype=np.float32)
    dense = torch.from_numpy(m.toarray())
    torch.testing.assert_close(csr_to_torch_csr(m).to_dense(), dense)
    x = torch.randn(8, 3, requires_grad=True)
    weights = torch.arange(15.0).reshape(5, 3)
    out = csr_product(m, x)
    (out * weights).sum().backward()
    sparse_grad = x.grad.clone()
    x.grad = None
    expected = dense @ x
    (expected * weights).sum().backward()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(sparse_grad, x.grad)
    with torch.no_grad():  # the forward-only path gives the same values
        torch.testing.assert_close(csr_product(m, x), expected.detach())


def test_csr_product_takes_bfloat16_inputs_as_under_autocast():
    """bf16 autocast hands the graph propagation bf16 item rows: the product runs in float32 and
    the gradient comes back in bf16 (it failed with a dtype mismatch before)."""
    rng = np.random.default_rng(1)
    m = sp.csr_matrix((rng.random((6, 9)) < 0.4) * rng.random((6, 9)), dtype=np.float32)
    x = torch.randn(9, 4).to(torch.bfloat16).requires_grad_()
    out = csr_product(m, x)
    out.sum().backward()
    assert out.dtype == torch.float32 and x.grad.dtype == torch.bfloat16
    dense = torch.from_numpy(m.toarray())
    torch.testing.assert_close(out, dense @ x.detach().float())
    torch.testing.assert_close(x.grad.float(), dense.sum(0)[:, None].expand(9, 4).to(torch.bfloat16).float())
    with torch.no_grad():
        torch.testing.assert_close(csr_product(m, x), out.detach())
