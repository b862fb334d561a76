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
