"""The descriptor network's parameters as plain arrays, in the order the fused graph needs them.

The fused scorer graph (``onnx_graph``) does not call the training module; it rebuilds the
forward pass from these weights. ``net_weights`` is the one place that knows the attribute
names of ``st3d_edge.model.network.DescriptorNet``.

Conventions: every ``Dense`` holds ``weight`` as (in, out) (transposed from torch's
``nn.Linear``) so ``x @ weight + bias`` is the layer; an LFA's output is the concatenation
``[geometric MLP mean, neighbour feature mean]`` in that order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEAKY_SLOPE = 0.2  # the paper's shared MLPs: one dense layer + LeakyReLU(0.2)


@dataclass(frozen=True)
class Dense:
    weight: np.ndarray  # (in, out) float32
    bias: np.ndarray  # (out,) float32

    @property
    def out_dim(self) -> int:
        return int(self.weight.shape[1])


@dataclass(frozen=True)
class BlockWeights:
    """One residual block: pre (d -> d/4), LFA geometric MLPs (4 -> d/4, 4 -> d/2), post, skip."""

    pre: Dense
    geo1: Dense
    geo2: Dense
    post: Dense
    skip: Dense


@dataclass(frozen=True)
class NetWeights:
    blocks: tuple[BlockWeights, ...]
    head1: Dense  # Linear(d, d) + LeakyReLU
    head2: Dense  # Linear(d, d), no activation

    @property
    def d(self) -> int:
        return self.head2.out_dim

    @property
    def geometric_channels(self) -> int:
        """4 for G = (p - p_j, ||p - p_j||); 7 when the ablation appends the absolute p."""
        return int(self.blocks[0].geo1.weight.shape[0])


def dense_from_linear(linear) -> Dense:
    """A torch ``nn.Linear`` as a ``Dense`` (float32 numpy copies)."""
    weight = linear.weight.detach().cpu().double().numpy().T.astype(np.float32)
    bias = linear.bias.detach().cpu().double().numpy().astype(np.float32)
    return Dense(np.ascontiguousarray(weight), bias)


def net_weights(net) -> NetWeights:
    """The parameters of a ``st3d_edge.model.network.DescriptorNet``.

    The attribute names (``blocks[i].mlp_in/lfa1/lfa2/mlp_out/shortcut``, ``head_hidden``,
    ``head_out``) are those of ``st3d_edge.model.blocks`` and ``network``.
    """
    blocks = tuple(
        BlockWeights(
            pre=dense_from_linear(block.mlp_in.linear),
            geo1=dense_from_linear(block.lfa1.geo.linear),
            geo2=dense_from_linear(block.lfa2.geo.linear),
            post=dense_from_linear(block.mlp_out.linear),
            skip=dense_from_linear(block.shortcut.linear),
        )
        for block in net.blocks
    )
    return NetWeights(blocks, dense_from_linear(net.head_hidden), dense_from_linear(net.head_out))
