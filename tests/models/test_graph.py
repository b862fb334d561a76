"""Graph propagation: the sparse products and their hand-written backward match dense algebra."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.models.graph import normalized_adjacency, propagate


def test_propagation_and_its_gradients_match_dense_algebra():
    rng = np.random.default_rng(0)
    matrix = sp.csr_matrix((rng.random((7, 5)) < 0.4).astype(np.float32))
    adj = normalized_adjacency(matrix)
    torch.manual_seed(0)
    users, items = torch.randn(7, 3, requires_grad=True), torch.randn(5, 3, requires_grad=True)
    out_u, out_i = propagate(adj, users, items, layers=2)
    (out_u.pow(2).sum() + (out_i * torch.arange(3.0)).sum()).backward()
    sparse_grads = users.grad.clone(), items.grad.clone()

    a = adj[0].to_dense()
    torch.testing.assert_close(adj[1].to_dense(), a.T)
    users.grad = items.grad = None
    u1, i1 = a @ items, a.T @ users
    u2, i2 = a @ i1, a.T @ u1
    dense_u, dense_i = (users + u1 + u2) / 3, (items + i1 + i2) / 3
    torch.testing.assert_close(out_u, dense_u)
    torch.testing.assert_close(out_i, dense_i)
    (dense_u.pow(2).sum() + (dense_i * torch.arange(3.0)).sum()).backward()
    torch.testing.assert_close(sparse_grads[0], users.grad)
    torch.testing.assert_close(sparse_grads[1], items.grad)


def test_items_only_propagation_equals_the_full_one():
    rng = np.random.default_rng(1)
    adj = normalized_adjacency(sp.csr_matrix((rng.random((6, 4)) < 0.5).astype(np.float32)))
    users, items = torch.randn(6, 3), torch.randn(4, 3)
    for layers in (1, 2, 3):
        _, full = propagate(adj, users, items, layers)
        none, only = propagate(adj, users, items, layers, users_out=False)
        assert none is None
        torch.testing.assert_close(only, full)
