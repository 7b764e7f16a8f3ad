"""Symmetric Chamfer distance between a decoded point set and a receptive field.

``Chamfer(a, b) = mean_{x in a} min_{y in b} ||x - y||^2 + mean_{y in b} min_{x in a} ||x - y||^2``

Squared distances, each direction averaged over its own set, the two directions summed:
the convention of the common implementations of the paper's reference [3] (Fan et al.)
and of pytorch3d's ``chamfer_distance``; the paper does not say which it used.

A receptive field of 8 hops at k = 32 can hold thousands of points, so the fast version
never holds more than a bounded block of pairwise distances: it finds each point's
nearest partner block by block without gradients, then differentiates only the matched
pairs. The gradient of a minimum is the gradient of the distance it selects, so this is
the same gradient as the brute-force reference (ties aside, which have measure zero).
"""

from __future__ import annotations

import torch

# Pairwise distances held at once by the fast version (16 MB of float32).
_BLOCK_ELEMENTS = 1 << 22


def chamfer_distance(a: torch.Tensor, b: torch.Tensor, block_elements: int = _BLOCK_ELEMENTS) -> torch.Tensor:
    """Symmetric Chamfer distance of (m, 3) and (r, 3) with bounded memory; a scalar tensor."""
    _check(a, b)
    nearest_in_b = _nearest(a, b, block_elements)
    nearest_in_a = _nearest(b, a, block_elements)
    a_to_b = (a - b[nearest_in_b]).square().sum(dim=1).mean()
    b_to_a = (b - a[nearest_in_a]).square().sum(dim=1).mean()
    return a_to_b + b_to_a


def chamfer_reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Brute force: the full (m, r) matrix of squared distances."""
    _check(a, b)
    squared = (a[:, None, :] - b[None, :, :]).square().sum(dim=-1)
    return squared.min(dim=1).values.mean() + squared.min(dim=0).values.mean()


@torch.no_grad()
def _nearest(queries: torch.Tensor, targets: torch.Tensor, block_elements: int) -> torch.Tensor:
    rows = max(1, block_elements // max(1, targets.shape[0]))
    found = []
    for start in range(0, queries.shape[0], rows):
        # The difference form, not the |x|^2 + |y|^2 - 2xy expansion, so the minimum is
        # taken over the same numbers as in the reference.
        queries_block = queries[start : start + rows]
        block = torch.cdist(queries_block, targets, compute_mode="donot_use_mm_for_euclid_dist")
        found.append(block.argmin(dim=1))
    return torch.cat(found)


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    for name, x in (("a", a), ("b", b)):
        if x.dim() != 2 or x.shape[1] != 3 or x.shape[0] == 0:
            raise ValueError(f"chamfer: {name} must be a non-empty (n, 3) tensor, got {tuple(x.shape)}")
