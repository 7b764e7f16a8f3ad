"""The decoder D of teacher pretraining (paper section 4.1): one descriptor -> m points.

An MLP ``d -> 128 -> 128 -> 3m`` with LeakyReLU(0.05) after each hidden layer and none
after the output, whose 3m numbers are read as m points (x, y, z) in the scaled and
centred coordinates of the receptive field. Parameters: ``hidden1``, ``hidden2``, ``out``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DECODER_SLOPE = 0.05
DECODER_HIDDEN = 128


class Decoder(nn.Module):
    def __init__(self, d: int, m: int = 1024) -> None:
        super().__init__()
        self.m = m
        self.hidden1 = nn.Linear(d, DECODER_HIDDEN)
        self.hidden2 = nn.Linear(DECODER_HIDDEN, DECODER_HIDDEN)
        self.out = nn.Linear(DECODER_HIDDEN, 3 * m)

    def forward(self, descriptors: torch.Tensor) -> torch.Tensor:
        """(b, d) -> (b, m, 3)."""
        x = F.leaky_relu(self.hidden1(descriptors), DECODER_SLOPE)
        x = F.leaky_relu(self.hidden2(x), DECODER_SLOPE)
        return self.out(x).view(descriptors.shape[0], self.m, 3)
