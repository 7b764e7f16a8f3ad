"""k nearest data points of query points: pykdtree when installed, scipy's cKDTree otherwise,
and for a cloud's own neighbours the numba grid of :mod:`st3d_edge.geometry.grid_knn`.

pykdtree (in the ``runtime`` extra; wheels for x86_64 and aarch64) answers the same queries
1.2-1.4x faster for the kNN graph and about 2x for the fill's 4 nearest, measured on an
800 x 800 scan (benchmarks/geometry.py). Both get float64 coordinates, so both rank by the
same float64 distances and return the same neighbours up to the order of exact ties.
pykdtree runs on OpenMP threads (``OMP_NUM_THREADS``); ``workers`` only sizes cKDTree's pool.
pykdtree keeps each query's k best in a sorted list, which costs O(k) per candidate: past
:data:`PYKDTREE_MAX_K` neighbours cKDTree on all cores is faster, and is used. Measured on 64000
sampled points of an 800 x 800 scan, 2 cores (ms, pykdtree / cKDTree, radius 1.5 mm): k = 32
150 / 173, k = 48 211 / 207, k = 64 383 / 249, k = 100 585 / 253.

A cloud's own k nearest (:func:`nearest_in_cloud`: the kNN graph, FPFH's neighbourhoods) come
from the grid's block search from :data:`GRID_MIN_K` neighbours on, with the same distances and
neighbours: on those 64000 points (ms, grid / kd-tree, median of 3, same process) k = 8 59 / 60,
k = 16 72 / 88, k = 32 103 / 156, k = 100 163 / 559; below k = 8 the kd-tree is faster
(k = 1 46 / 24).
"""

from __future__ import annotations

import functools

import numpy as np

PYKDTREE_MAX_K = 48
GRID_MIN_K = 8


@functools.cache
def pykdtree_available() -> bool:
    try:
        import pykdtree.kdtree  # noqa: F401
    except ImportError:
        return False
    return True


def query_nearest(
    data: np.ndarray,
    queries: np.ndarray,
    k: int,
    workers: int = -1,
    use_pykdtree: bool | None = None,
    radius: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(float64[q, k] distances, int64[q, k] indices into ``data``), nearest first.

    ``data`` needs at least k points. ``use_pykdtree``: None picks pykdtree when installed and
    k <= :data:`PYKDTREE_MAX_K`; False forces cKDTree (the reference the tests compare against).
    ``radius``: only neighbours closer than it (strictly, cKDTree's rule, enforced here for both
    libraries); the missing entries hold index ``len(data)`` and distance ``inf``.
    """
    data64 = np.ascontiguousarray(data, dtype=np.float64)
    queries64 = np.ascontiguousarray(queries, dtype=np.float64)
    if use_pykdtree is None:
        use_pykdtree = pykdtree_available() and k <= PYKDTREE_MAX_K
    if use_pykdtree:
        from pykdtree.kdtree import KDTree

        dist, idx = KDTree(data64).query(queries64, k=k, distance_upper_bound=radius)
    else:
        from scipy.spatial import cKDTree

        bound = np.inf if radius is None else radius
        dist, idx = cKDTree(data64).query(queries64, k=k, workers=workers, distance_upper_bound=bound)
    shape = (len(queries64), k)
    dist = np.asarray(dist, dtype=np.float64).reshape(shape)
    idx = np.asarray(idx, dtype=np.int64).reshape(shape)
    return _cut_at_radius(dist, idx, radius, len(data64))


def _cut_at_radius(
    dist: np.ndarray, idx: np.ndarray, radius: float | None, missing: int
) -> tuple[np.ndarray, np.ndarray]:
    # only neighbours strictly closer than the radius (cKDTree's rule); the rest become
    # (inf, missing), whichever search found them
    if radius is not None:
        outside = ~(dist < radius)
        dist[outside], idx[outside] = np.inf, missing
    return dist, idx


def nearest_in_cloud(
    cloud: np.ndarray,
    k: int,
    workers: int = -1,
    radius: float | None = None,
    use_grid: bool | None = None,
    use_pykdtree: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`query_nearest` of a cloud against itself: each point's k nearest, itself included.

    ``use_grid``: None takes the numba grid search (:func:`st3d_edge.geometry.grid_knn.grid_knn`)
    when numba is installed and k >= :data:`GRID_MIN_K`; False forces the kd-tree (the
    reference; ``use_pykdtree`` as in :func:`query_nearest`). Same distances either way,
    indices up to the order of exact ties (by index on the grid).
    """
    from st3d_edge.numba_support import numba_available

    if use_grid is None:
        use_grid = k >= GRID_MIN_K and numba_available()
    if not use_grid:
        return query_nearest(cloud, cloud, k, workers, use_pykdtree=use_pykdtree, radius=radius)
    from st3d_edge.geometry.grid_knn import grid_knn

    dist, idx = grid_knn(cloud, k)
    return _cut_at_radius(dist, idx, radius, len(idx))
