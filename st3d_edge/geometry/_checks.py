"""Shape checks shared by the geometry ops (programming errors, hence ValueError)."""

from __future__ import annotations

import numpy as np


def as_cloud(points, name: str = "points") -> np.ndarray:
    """``points`` as a C-contiguous ``(N, 3)`` float32 array, or a ValueError that says why not."""
    cloud = np.ascontiguousarray(points, dtype=np.float32)
    if cloud.ndim != 2 or cloud.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {cloud.shape}")
    return cloud


def as_count(n, name: str = "n") -> int:
    value = int(n)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value
