"""The normalization scale s of eq. (4).

s is the mean distance from each point to its k-1 true neighbours (kNN columns 1..k-1; the
self column would add a zero per point), averaged over all points of all clouds. Callers
stream clouds through :func:`knn_distance_sum` (or :func:`scale_s`) rather than stacking
them, and the sum is kept in float64 so millions of terms do not lose precision.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from st3d_edge.geometry._checks import as_cloud


def knn_distance_sum(points, knn) -> tuple[float, int]:
    """(sum of distances from each point to its neighbours in columns 1..k-1, their count)."""
    cloud = as_cloud(points).astype(np.float64)
    knn = np.asarray(knn)
    if knn.ndim != 2 or len(knn) != len(cloud):
        raise ValueError(f"knn must have shape ({len(cloud)}, k), got {knn.shape}")
    neighbours = knn[:, 1:]
    offsets = cloud[neighbours] - cloud[:, None, :]
    total = float(np.sqrt(np.einsum("ijk,ijk->ij", offsets, offsets)).sum())
    return total, int(neighbours.size)


def scale_s(pairs: Iterable[tuple]) -> float:
    """s over an iterable of ``(points, knn)`` pairs (consumed once, lazily).

    An item may also be a ``(sum, count)`` result of :func:`knn_distance_sum` computed
    earlier (both scalars), so callers that already streamed the sums can combine them.
    """
    total, count = 0.0, 0
    for first, second in pairs:
        if np.ndim(first) == 0 and np.ndim(second) == 0:
            part_sum, part_count = float(first), int(second)
        else:
            part_sum, part_count = knn_distance_sum(first, second)
        total += part_sum
        count += part_count
    if count == 0:
        raise ValueError("scale s needs at least one point with a neighbour (k >= 2)")
    return total / count
