"""The fast neighbour averages against the obvious gather-and-average."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from st3d_edge.model import pooling
from st3d_edge.model.pooling import NeighbourMean, pooled_geometric_features
from tests.helpers import EXACT, FLOAT32_SAME_MATH, assert_close

torch.set_num_threads(2)


def _obvious_geometric_pool(geometric, weight, bias):
    return F.leaky_relu(geometric @ weight.t() + bias, 0.2).mean(dim=1)


def test_neighbour_mean_hand_worked():
    knn = torch.tensor([[0, 1], [1, 2], [2, 2]])  # a repeated entry counts twice
    x = torch.tensor([[1.0], [3.0], [7.0]])
    assert_close(NeighbourMean(knn)(x), [[2.0], [5.0], [7.0]], **EXACT, what="A x")


def test_neighbour_mean_matches_gather_forward_and_backward():
    gen = torch.Generator().manual_seed(1)
    n, k, c = 300, 9, 5
    knn = torch.randint(0, n, (n, k), generator=gen)
    knn[:, 0] = torch.arange(n)
    x = torch.randn(n, c, generator=gen, requires_grad=True)
    weights = torch.randn(n, c, generator=gen)
    fast = NeighbourMean(knn)(x)
    obvious = x[knn].mean(dim=1)
    assert_close(fast.detach(), obvious.detach(), **FLOAT32_SAME_MATH, what="forward")
    (grad_fast,) = torch.autograd.grad((fast * weights).sum(), x)
    (grad_obvious,) = torch.autograd.grad((obvious * weights).sum(), x)
    assert_close(grad_fast, grad_obvious, **FLOAT32_SAME_MATH, what="gradient")


def test_neighbour_mean_refuses_out_of_range_indices():
    with pytest.raises(ValueError, match="outside"):
        NeighbourMean(torch.tensor([[0, 5], [1, 0]]))


def _random_pool_inputs(n=200, k=7, g=4, channels=24, seed=2):
    gen = torch.Generator().manual_seed(seed)
    geometric = torch.randn(n, k, g, generator=gen)
    weight = torch.randn(channels, g, generator=gen, requires_grad=True)
    bias = torch.randn(channels, generator=gen, requires_grad=True)
    upstream = torch.randn(n, channels, generator=gen) / n
    return geometric, weight, bias, upstream


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("g", [4, 7])
def test_geometric_pool_matches_obvious(backend, g, monkeypatch):
    monkeypatch.setattr(pooling, "_CHUNK_ELEMENTS", 4000)  # many chunks in the torch version
    geometric, weight, bias, upstream = _random_pool_inputs(g=g)
    fast = pooled_geometric_features(geometric, weight, bias, backend=backend)
    obvious = _obvious_geometric_pool(geometric, weight, bias)
    assert_close(fast.detach(), obvious.detach(), **FLOAT32_SAME_MATH, what="forward")
    grads_fast = torch.autograd.grad((fast * upstream).sum(), [weight, bias])
    grads_obvious = torch.autograd.grad((obvious * upstream).sum(), [weight, bias])
    for name, a, b in zip(["weight", "bias"], grads_fast, grads_obvious, strict=True):
        assert_close(a, b, **FLOAT32_SAME_MATH, what=f"gradient of {name}")


def test_torch_pool_gradient_for_coordinates():
    geometric, weight, bias, upstream = _random_pool_inputs()
    geometric.requires_grad_(True)
    fast = pooled_geometric_features(geometric, weight, bias, backend="torch")
    obvious = _obvious_geometric_pool(geometric, weight, bias)
    (grad_fast,) = torch.autograd.grad((fast * upstream).sum(), geometric)
    (grad_obvious,) = torch.autograd.grad((obvious * upstream).sum(), geometric)
    assert_close(grad_fast, grad_obvious, **FLOAT32_SAME_MATH, what="gradient of G")


def test_auto_backend_falls_back_when_coordinates_need_gradients():
    geometric, weight, bias, _ = _random_pool_inputs()
    geometric.requires_grad_(True)
    pooled_geometric_features(geometric, weight, bias).sum().backward()
    assert geometric.grad is not None
    with pytest.raises(ValueError, match="numba"):
        pooled_geometric_features(geometric, weight, bias, backend="numba")
