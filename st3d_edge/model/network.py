"""The descriptor network of the teacher and the student (paper section 3.1).

``DescriptorNet(d, blocks, absolute_coords)`` maps coordinates already divided by the
scale ``s`` and the kNN indices (point itself in column 0) to one ``d``-vector per point.

* ``G(p, p_j) = (p - p_j) ⊕ ||p - p_j||`` is computed once per forward pass and shared
  by every LFA block. With ``absolute_coords`` (the paper's ablation) the scaled
  absolute coordinates of the centre point ``p`` are appended: ``G`` has 7 numbers,
  ``(p - p_j, ||p - p_j||, p)``, the first 4 as in the invariant network.
* Features start at ``f_p = 0``; four residual blocks; then the head
  ``head_hidden`` (Linear d->d) -> LeakyReLU(0.2) -> ``head_out`` (Linear d->d).

Two formulations, same parameters:

* ``DescriptorNet.forward``: the training one. The neighbour average of each LFA is split
  into the average of the geometric part (all LFAs in one pass) and a sparse averaging
  matrix times the features, see :mod:`st3d_edge.model.pooling`.
* ``reference_forward(net, points, knn)``: the obvious one (gather the neighbours'
  features to (n, k, c), concatenate, average). Tests compare the two.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from st3d_edge.model.blocks import LEAKY_SLOPE, ResidualBlock
from st3d_edge.model.pooling import NeighbourMean, pooled_geometric_features


class DescriptorNet(nn.Module):
    def __init__(self, d: int = 64, blocks: int = 4, absolute_coords: bool = False) -> None:
        super().__init__()
        self.d = d
        self.absolute_coords = absolute_coords
        self.geometric_channels = 7 if absolute_coords else 4
        self.blocks = nn.ModuleList(ResidualBlock(d, self.geometric_channels) for _ in range(blocks))
        self.head_hidden = nn.Linear(d, d)
        self.head_out = nn.Linear(d, d)

    @property
    def lfa_layers(self) -> int:
        return 2 * len(self.blocks)

    def geometric_features(self, points: torch.Tensor, knn: torch.Tensor) -> torch.Tensor:
        """G for every (point, neighbour) pair: (n, k, 4), or (n, k, 7) with absolute coordinates."""
        _check_inputs(points, knn)
        offsets = points[:, None, :] - points[knn]
        distances = torch.linalg.vector_norm(offsets, dim=-1, keepdim=True)
        parts = [offsets, distances]
        if self.absolute_coords:
            parts.append(points[:, None, :].expand_as(offsets))
        return torch.cat(parts, dim=-1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head_out(F.leaky_relu(self.head_hidden(features), LEAKY_SLOPE))

    def forward(self, points: torch.Tensor, knn: torch.Tensor, pooling: str = "auto") -> torch.Tensor:
        """(n, 3) scaled coordinates, (n, k) int64 kNN -> (n, d) descriptors.

        ``pooling`` picks the implementation of the geometric averages ("auto", "numba",
        "torch"); all give the same numbers up to float rounding.
        """
        geometric = self.geometric_features(points, knn)
        lfas = [lfa for block in self.blocks for lfa in block.lfas]
        weight = torch.cat([lfa.geo.linear.weight for lfa in lfas])
        bias = torch.cat([lfa.geo.linear.bias for lfa in lfas])
        pooled = pooled_geometric_features(geometric, weight, bias, backend=pooling)
        geo_means = iter(torch.split(pooled, [lfa.in_channels for lfa in lfas], dim=1))
        neighbour_mean = NeighbourMean(knn, dtype=points.dtype)

        features = points.new_zeros(points.shape[0], self.d)
        for block in self.blocks:
            hidden = block.mlp_in(features)
            for _ in block.lfas:
                hidden = torch.cat([next(geo_means), neighbour_mean(hidden)], dim=1)
            features = block.mlp_out(hidden) + block.shortcut(features)
        return self.head(features)


def reference_forward(net: DescriptorNet, points: torch.Tensor, knn: torch.Tensor) -> torch.Tensor:
    """The obvious formulation with the parameters of ``net``: gather, concatenate, average."""
    geometric = net.geometric_features(points, knn)
    features = points.new_zeros(points.shape[0], net.d)
    for block in net.blocks:
        hidden = block.mlp_in(features)
        for lfa in block.lfas:
            pairs = torch.cat([lfa.geo(geometric), hidden[knn]], dim=-1)
            hidden = pairs.mean(dim=1)
        features = block.mlp_out(hidden) + block.shortcut(features)
    return net.head(features)


def _check_inputs(points: torch.Tensor, knn: torch.Tensor) -> None:
    if points.dim() != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (n, 3), got shape {tuple(points.shape)}")
    if knn.dim() != 2 or knn.shape[0] != points.shape[0]:
        raise ValueError(f"knn must be (n, k) with n = {points.shape[0]}, got shape {tuple(knn.shape)}")
    if knn.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"knn must hold integer indices, got {knn.dtype}")
