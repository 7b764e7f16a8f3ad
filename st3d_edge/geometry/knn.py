"""k nearest neighbours of every point, the point itself in column 0.

Ties at equal distance are ordered by index in the reference; the kd-tree's order among
exact ties is its own (pykdtree or cKDTree, see :mod:`st3d_edge.geometry.kdtree`), so tests
compare neighbour sets up to ties. With duplicate points a duplicate may come back before the
point itself; column 0 is fixed up explicitly so it is always the point (the network's
self-term relies on it).
"""

from __future__ import annotations

import numpy as np

from st3d_edge.geometry._checks import as_cloud, as_count


def _check_k(n_points: int, k) -> int:
    k = as_count(k, "k")
    if k < 1:
        raise ValueError("k must be >= 1")
    if k > n_points:
        raise ValueError(f"k = {k} neighbours need at least {k} points, got {n_points}")
    return k


def put_self_first(knn: np.ndarray) -> np.ndarray:
    """Make column 0 of every row its own index (in place), keeping the other order.

    If the row holds its own index further right, that entry moves to the front; if not
    (more than k duplicates), the row shifts right by one, dropping its last entry.
    """
    rows = np.arange(len(knn))
    wrong = np.flatnonzero(knn[:, 0] != rows)
    for r in wrong:
        row = knn[r]
        where = np.flatnonzero(row == r)
        stop = int(where[0]) if len(where) else len(row) - 1
        row[1 : stop + 1] = row[:stop].copy()
        row[0] = r
    return knn


def knn_indices(points, k: int, workers: int = -1, use_pykdtree: bool | None = None) -> np.ndarray:
    """int32[N, k] neighbour indices by :func:`st3d_edge.geometry.kdtree.nearest_in_cloud`
    (``workers=-1``: all cores; ``use_pykdtree`` True or False: the kd-tree, that library or
    not, instead of the grid; see :func:`st3d_edge.geometry.kdtree.query_nearest`)."""
    from st3d_edge.geometry.kdtree import nearest_in_cloud

    cloud = as_cloud(points)
    k = _check_k(len(cloud), k)
    grid = None if use_pykdtree is None else False
    _, idx = nearest_in_cloud(cloud, k, workers=workers, use_grid=grid, use_pykdtree=use_pykdtree)
    return put_self_first(idx.astype(np.int32))


def knn_and_nearest(
    points, k: int, count: int, workers: int = -1
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The kNN graph of :func:`knn_indices` and, from the same kd-tree query, each point's
    ``count`` nearest as (int64 indices, float64 distances), nearest first: what the geometric
    score reads (:func:`st3d_edge.geometry.fpfh.fpfh`), for one query instead of two."""
    from st3d_edge.geometry.kdtree import nearest_in_cloud

    cloud = as_cloud(points)
    k = _check_k(len(cloud), k)
    wide = min(max(k, int(count)), len(cloud))
    dist, idx = nearest_in_cloud(cloud, wide, workers=workers)
    return put_self_first(idx[:, :k].astype(np.int32)), (idx, dist)


def knn_bruteforce(points, k: int, chunk: int = 1024) -> np.ndarray:
    """The reference: all pairwise distances, ``chunk`` query rows at a time, ties by index."""
    cloud = as_cloud(points).astype(np.float64)
    k = _check_k(len(cloud), k)
    knn = np.empty((len(cloud), k), dtype=np.int32)
    for lo in range(0, len(cloud), chunk):
        block = cloud[lo : lo + chunk]
        dist = sum((block[:, None, axis] - cloud[None, :, axis]) ** 2 for axis in range(3))
        kth = np.partition(dist, k - 1, axis=1)[:, k - 1]
        for i, row in enumerate(dist):
            # every point up to the k-th distance, then sorted by (distance, index)
            candidates = np.flatnonzero(row <= kth[i])
            knn[lo + i] = candidates[np.lexsort((candidates, row[candidates]))[:k]]
    return put_self_first(knn)
