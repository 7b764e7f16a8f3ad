"""Fixed-radius nearest neighbours on a uniform grid (numba): the FPFH neighbourhoods.

The FPFH stage asks, for every sampled point, for its (at most ``max_nn``) nearest points
strictly within a radius (:func:`st3d_edge.geometry.fpfh.radius_neighbours`). A kd-tree answers
that as a k-nearest query with a distance bound and keeps a sorted list of k = 100 per query;
on the grid of :mod:`st3d_edge.geometry.grid_index` each point instead visits the cells that
its radius ball meets, keeps the points inside the ball and sorts those few. Same lists as
cKDTree (the reference the tests compare with) up to the order of equidistant points, in about
a fifth of the time at n = 64000 (benchmarks/geometry.py).

Decision: column 0 is always the point itself (a duplicate point at distance 0 comes after it),
which is what the callers assume of a radius query.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from st3d_edge.geometry.grid_index import grid_layout, kernels
from st3d_edge.numba_support import KERNEL_LOCK

CHUNK = 256  # points per parallel block (one candidate buffer each)


@functools.cache
def _kernel():
    import numba

    _, _, cell_range, axis_gap, _ = kernels()

    @numba.njit(cache=True)
    def one_point(q, sp, starts, slot, dims, lo, h, zlo, zhi, radius, d2s, who):
        # the points strictly within radius of sorted point q (itself excluded) into d2s/who;
        # returns how many, or minus the buffer size needed when the buffers are too short
        ny, nz = dims[1], dims[2]
        px, py, pz = sp[q, 0], sp[q, 1], sp[q, 2]
        x0, x1 = cell_range(px - radius, px + radius, lo[0], h, dims[0])
        y0, y1 = cell_range(py - radius, py + radius, lo[1], h, ny)
        z0, z1 = cell_range(pz - radius, pz + radius, lo[2], h, nz)
        r2 = radius * radius
        r2_loose = r2 * (1.0 + 1e-9)  # the exact test is sqrt(d2) < radius, cKDTree's bound
        size = 0
        found = 0
        for gx in range(x0, x1 + 1):
            gap_x = axis_gap(px, gx, lo[0], h, dims[0])
            for gy in range(y0, y1 + 1):
                gap_y = axis_gap(py, gy, lo[1], h, ny)
                col = gx * ny + gy
                for gz in range(max(z0, zlo[col]), min(z1, zhi[col]) + 1):
                    c = slot[col * nz + gz]
                    if c < 0:
                        continue
                    gap_z = axis_gap(pz, gz, lo[2], h, nz)
                    if gap_x * gap_x + gap_y * gap_y + gap_z * gap_z >= r2:
                        continue  # the whole cell lies outside the ball
                    size += starts[c + 1] - starts[c]
                    if size > d2s.shape[0]:
                        continue  # only counting now: the caller grows the buffers and asks again
                    for j in range(starts[c], starts[c + 1]):
                        dx = sp[q, 0] - sp[j, 0]
                        dy = sp[q, 1] - sp[j, 1]
                        dz = sp[q, 2] - sp[j, 2]
                        d2 = dx * dx + dy * dy + dz * dz
                        if d2 < r2_loose and j != q and math.sqrt(d2) < radius:
                            d2s[found] = d2
                            who[found] = j
                            found += 1
        return found if size <= d2s.shape[0] else -size

    @numba.njit(parallel=True, cache=True)
    def neighbours(sp, order, starts, slot, dims, lo, h, zlo, zhi, radius, k, chunk):
        # sp: the points cell by cell, order[q] the cloud index of sorted point q; rows and
        # indices of the output are in cloud order
        total = sp.shape[0]
        out_idx = np.full((total, k), total, dtype=np.int64)
        out_dist = np.full((total, k), np.inf)
        counts = np.zeros(total, dtype=np.int64)
        for block in numba.prange((total + chunk - 1) // chunk):
            d2s = np.empty(1024)  # one buffer per block, grown when a ball holds more candidates
            who = np.empty(1024, dtype=np.int64)
            for q in range(block * chunk, min(total, (block + 1) * chunk)):
                found = one_point(q, sp, starts, slot, dims, lo, h, zlo, zhi, radius, d2s, who)
                if found < 0:
                    d2s = np.empty(-found)
                    who = np.empty(-found, dtype=np.int64)
                    found = one_point(q, sp, starts, slot, dims, lo, h, zlo, zhi, radius, d2s, who)
                row = order[q]
                if radius > 0.0:
                    out_idx[row, 0] = row
                    out_dist[row, 0] = 0.0
                    counts[row] = 1
                else:
                    continue
                rank = np.argsort(d2s[:found], kind="mergesort")
                for t in range(min(found, k - 1)):
                    out_idx[row, t + 1] = order[who[rank[t]]]
                    out_dist[row, t + 1] = math.sqrt(d2s[rank[t]])
                counts[row] = 1 + min(found, k - 1)
        return out_idx, out_dist, counts.max() if total > 0 else 0

    return neighbours


def radius_neighbours_grid(points: np.ndarray, radius: float, max_nn: int) -> tuple[np.ndarray, np.ndarray]:
    """(int64[m, K] indices, float64[m, K] distances): each point itself, then its nearest others
    strictly within ``radius``, nearest first; missing entries hold index ``m`` and distance
    ``inf``. K is min(max_nn, m), or the longest list when every list is shorter (columns no
    point fills are left out). The first K columns of what
    :func:`st3d_edge.geometry.kdtree.query_nearest` gives with ``radius``, up to the order of
    equidistant points."""
    cloud = np.ascontiguousarray(points, dtype=np.float64)
    if cloud.ndim != 2 or cloud.shape[1] != 3 or len(cloud) == 0:
        raise ValueError(f"points must be a non-empty (m, 3) array, got shape {cloud.shape}")
    if not np.isfinite(cloud).all():
        raise ValueError("points must be finite")
    if max_nn < 1:
        raise ValueError(f"max_nn must be >= 1, got {max_nn}")
    m = len(cloud)
    lo, h, dims, slot, starts, order, zlo, zhi = grid_layout(cloud)
    with KERNEL_LOCK:
        idx, dist, width = _kernel()(
            np.ascontiguousarray(cloud[order]), order, starts, slot, dims, lo, h, zlo, zhi,
            float(radius), min(max_nn, m), CHUNK,
        )  # fmt: skip
    width = max(int(width), 1)
    return np.ascontiguousarray(idx[:, :width]), np.ascontiguousarray(dist[:, :width])
