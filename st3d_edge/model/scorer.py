"""The anomaly scorer of paper eq. (6): teacher, student and the calibration in one module.

``scores = || f_S - (f_T - mu) / sigma ||_2`` per point, with the raw coordinates divided
by the scale ``s`` inside, so a caller hands over the cloud in the scan's units. ``s``,
``mu`` and ``sigma`` are float32 buffers (``scale``, ``mu``, ``sigma``): they travel with
``state_dict`` and with the module's device. A non-positive ``s`` or ``sigma`` is refused
here, where it is cheap to explain, rather than turned into infinite scores.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from st3d_edge.model.network import DescriptorNet


class Scorer(nn.Module):
    def __init__(self, teacher: DescriptorNet, student: DescriptorNet, s: float, mu, sigma) -> None:
        super().__init__()
        self.teacher = teacher
        self.student = student
        mu_t = torch.as_tensor(np.asarray(mu, dtype=np.float32))
        sigma_t = torch.as_tensor(np.asarray(sigma, dtype=np.float32))
        if not float(s) > 0:
            raise ValueError(f"the scale s must be positive, got {s}")
        if mu_t.shape != (teacher.d,) or sigma_t.shape != (teacher.d,):
            raise ValueError(
                f"mu and sigma must have shape ({teacher.d},), "
                f"got {tuple(mu_t.shape)} and {tuple(sigma_t.shape)}"
            )
        if not bool((sigma_t > 0).all()):
            raise ValueError("every sigma must be positive: a teacher channel is constant")
        self.register_buffer("scale", torch.tensor(float(s), dtype=torch.float32))
        self.register_buffer("mu", mu_t)
        self.register_buffer("sigma", sigma_t)

    def features(self, points_raw: torch.Tensor, knn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f_S, (f_T - mu) / sigma), both (n, d): what the score compares, for debugging."""
        points = points_raw / self.scale
        student = self.student(points, knn)
        teacher = (self.teacher(points, knn) - self.mu) / self.sigma
        return student, teacher

    def forward(self, points_raw: torch.Tensor, knn: torch.Tensor) -> torch.Tensor:
        """(n, 3) raw coordinates, (n, k) kNN -> (n,) anomaly scores."""
        student, teacher = self.features(points_raw, knn)
        return torch.linalg.vector_norm(student - teacher, dim=1)
