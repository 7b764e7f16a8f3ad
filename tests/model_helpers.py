"""Small clouds and kNN graphs for the model tests (numpy + scipy, float32)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree


def knn_self_first(points: np.ndarray, k: int) -> np.ndarray:
    _, knn = cKDTree(points).query(points, k)
    knn[:, 0] = np.arange(len(points))
    return knn.astype(np.int64)


def wavy_patch(n: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A curved surface patch with about unit neighbour spacing, like a cloud divided by s."""
    rng = np.random.default_rng(seed)
    side = np.sqrt(n)
    uv = rng.uniform(0, side, (n, 2))
    z = 1.5 * np.sin(uv[:, 0] / 2.0) * np.cos(uv[:, 1] / 3.0) + rng.normal(0, 0.05, n)
    points = np.column_stack([uv, z]).astype(np.float32)
    return torch.from_numpy(points), torch.from_numpy(knn_self_first(points, k))


def strip(n: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A long thin strip, so that an 8-hop receptive field covers only part of it."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, n / 4.0, n)
    yz = rng.uniform(0, 1.0, (n, 2))
    points = np.column_stack([x, yz]).astype(np.float32)
    return torch.from_numpy(points), torch.from_numpy(knn_self_first(points, k))


def seeded_net(d: int = 16, absolute_coords: bool = False, seed: int = 0):
    from st3d_edge.model.network import DescriptorNet

    torch.manual_seed(seed)
    return DescriptorNet(d=d, absolute_coords=absolute_coords)
