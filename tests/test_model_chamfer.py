"""Chamfer distance: hand-worked values, and the block-wise version against brute force."""

from __future__ import annotations

import pytest
import torch

from st3d_edge.model.chamfer import chamfer_distance, chamfer_reference
from tests.helpers import EXACT, FLOAT32_SAME_MATH, assert_close

torch.set_num_threads(2)


@pytest.mark.parametrize("chamfer", [chamfer_distance, chamfer_reference])
def test_hand_worked(chamfer):
    a = torch.tensor([[0.0, 0.0, 0.0]])
    b = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    # a -> b: nearest squared distance 1; b -> a: (1 + 4) / 2
    assert_close(chamfer(a, b), 3.5, **EXACT)
    assert_close(chamfer(b, b.flip(0)), 0.0, **EXACT, what="same set in another order")


@pytest.mark.parametrize(("m", "r", "block"), [(64, 50, 1 << 22), (64, 1500, 4000), (300, 7, 16)])
def test_blockwise_matches_brute_force(m, r, block):
    gen = torch.Generator().manual_seed(m + r)
    a = torch.randn(m, 3, generator=gen, requires_grad=True)
    b = (torch.randn(r, 3, generator=gen) * 1.5).requires_grad_(True)
    fast = chamfer_distance(a, b, block_elements=block)
    reference = chamfer_reference(a, b)
    assert_close(fast.detach(), reference.detach(), **FLOAT32_SAME_MATH, what="value")
    grads_fast = torch.autograd.grad(fast, [a, b])
    grads_reference = torch.autograd.grad(reference, [a, b])
    for name, x, y in zip("ab", grads_fast, grads_reference, strict=True):
        assert_close(x, y, **FLOAT32_SAME_MATH, what=f"gradient for {name}")


def test_symmetric():
    gen = torch.Generator().manual_seed(5)
    a, b = torch.randn(40, 3, generator=gen), torch.randn(90, 3, generator=gen)
    assert_close(chamfer_distance(a, b), chamfer_distance(b, a), **FLOAT32_SAME_MATH)


def test_refuses_empty_or_wrong_shapes():
    with pytest.raises(ValueError, match="non-empty"):
        chamfer_distance(torch.zeros(0, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        chamfer_distance(torch.zeros(4, 2), torch.zeros(4, 3))
