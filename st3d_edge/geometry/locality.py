"""A memory order for sampled points that keeps neighbours in space near in memory.

FPS returns its samples in the order it found them, each far from the ones before, so the
neighbours of a point sit anywhere in the array. Every later stage walks neighbour lists (the
network's kNN gathers, the FPFH histograms and their neighbour sums), and on a 64000-point
cloud those walks miss the cache on almost every neighbour. Listing the samples along a
Z-order (Morton) curve puts most neighbours near each other in memory (benchmarks/geometry.py
times the FPFH stage and the kNN in both orders; the README has the figures). The set of
samples, and every per-point result, is unchanged; only the order in which they are listed is.
An organized scan's own pixel order is about as local; the Z-order also serves unorganized
clouds and the training side, which listed samples in FPS order before.

Decision: Morton codes over the central :data:`QUANTILES` of each axis (points beyond are
clamped, so a few far outliers do not squeeze the rest into a few codes), :data:`BITS` bits per
axis, a stable sort (equal codes keep their sampling order).
"""

from __future__ import annotations

import numpy as np

BITS = 10  # 1024 steps per axis, 30-bit codes
QUANTILES = (0.001, 0.999)


def _spread_bits(v: np.ndarray) -> np.ndarray:
    """Insert two zero bits between the low :data:`BITS` bits of each value."""
    v = v.astype(np.uint64) & np.uint64(0x3FF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x030000FF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x0300F00F)
    v = (v | (v << np.uint64(4))) & np.uint64(0x030C30C3)
    v = (v | (v << np.uint64(2))) & np.uint64(0x09249249)
    return v


def morton_codes(points: np.ndarray) -> np.ndarray:
    """uint64[m] Z-order codes of the points on a 2^BITS grid per axis."""
    cloud = np.asarray(points, dtype=np.float64)
    lo, hi = np.quantile(cloud, QUANTILES, axis=0)
    steps = (1 << BITS) - 1
    scale = np.where(hi > lo, steps / np.where(hi > lo, hi - lo, 1.0), 0.0)
    cells = np.clip(np.floor((cloud - lo) * scale), 0, steps)
    return (
        (_spread_bits(cells[:, 0]) << np.uint64(2))
        | (_spread_bits(cells[:, 1]) << np.uint64(1))
        | _spread_bits(cells[:, 2])
    )


def locality_order(points: np.ndarray) -> np.ndarray:
    """int64[m]: the permutation that lists the points along the Z-order curve."""
    cloud = np.asarray(points)
    if cloud.ndim != 2 or cloud.shape[1] != 3:
        raise ValueError(f"points must be an (m, 3) array, got shape {cloud.shape}")
    if len(cloud) == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.isfinite(cloud).all():
        raise ValueError("points must be finite")
    return np.argsort(morton_codes(cloud), kind="stable").astype(np.int64)
