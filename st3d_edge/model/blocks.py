"""The building blocks of the descriptor network: shared MLP, LFA and residual block.

These modules hold the parameters and say how they are wired; the two ways of running
them (the obvious gather formulation and the fast one used for training) live in
:mod:`st3d_edge.model.network`, so that both, and the exported graph, read the very same
parameters.

Decisions the paper leaves open (fixed by the project's design notes):

* A shared MLP is one ``Linear`` followed by ``LeakyReLU(0.2)`` (paper section 4.1).
* An LFA block with ``c`` input channels maps the geometric features ``G`` of each point
  pair through a shared MLP ``g -> c`` (``g`` = 4, or 7 with absolute coordinates),
  concatenates them with the neighbour's input features (``c``) in that order, geometric
  part first, and averages over the ``k`` neighbours: ``2c`` output channels. Nothing
  follows the average (no MLP after the pooling).
* A residual block ``d -> d``: ``mlp_in`` (d -> d/4), ``lfa1`` (d/4 -> d/2), ``lfa2``
  (d/2 -> d), ``mlp_out`` (d -> d); plus ``shortcut`` (d -> d) on the block input; the
  two are summed with no activation after the sum.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

LEAKY_SLOPE = 0.2


class SharedMLP(nn.Module):
    """``LeakyReLU(0.2)(linear(x))`` applied to the last axis; parameter ``linear``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.linear(x), LEAKY_SLOPE)


class LFA(nn.Module):
    """Local feature aggregation ``c -> 2c``; its only parameters are ``geo`` (g -> c)."""

    def __init__(self, in_channels: int, geometric_channels: int = 4) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = 2 * in_channels
        self.geo = SharedMLP(geometric_channels, in_channels)


class ResidualBlock(nn.Module):
    """Residual block ``d -> d`` with ``mlp_in``, ``lfa1``, ``lfa2``, ``mlp_out``, ``shortcut``."""

    def __init__(self, d: int, geometric_channels: int = 4) -> None:
        super().__init__()
        if d % 4:
            raise ValueError(f"descriptor size d must be a multiple of 4, got {d}")
        self.mlp_in = SharedMLP(d, d // 4)
        self.lfa1 = LFA(d // 4, geometric_channels)
        self.lfa2 = LFA(d // 2, geometric_channels)
        self.mlp_out = SharedMLP(d, d)
        self.shortcut = SharedMLP(d, d)

    @property
    def lfas(self) -> tuple[LFA, LFA]:
        return (self.lfa1, self.lfa2)
