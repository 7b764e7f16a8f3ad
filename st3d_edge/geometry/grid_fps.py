"""Exact farthest point sampling on a uniform grid (numba): the CPU's ``fps`` sampler.

The same sequence as :func:`st3d_edge.geometry.fps.fps_exact` from the same first point (float64
squared distances, ties to the lowest index), in a fraction of the work:

* After sample ``s`` is taken, only points closer to ``s`` than their current distance to the
  samples change, and every point's distance is at most the distance ``R`` of ``s`` itself (it
  was the farthest). So each step visits only the grid cells within ``R`` of ``s``, and skips a
  cell whose nearest possible point is farther from ``s`` than the cell's largest distance.
* The farthest point is kept by a tournament tree over the non-empty cells (each leaf holds its
  cell's largest distance and that point), so a step costs a few cells and a few tree paths
  instead of a pass over all N points.
* Cells: the uniform grid of :mod:`st3d_edge.geometry.grid_index`.
* A visited cell is updated without a branch on the distances (a sampled point's -inf stays the
  minimum), and its largest distance found again by a second pass only if the point that held
  it came closer (the others only fell; a tie would already have been the holder, the lowest
  index, as the cell's points are in index order). Same samples; on the scan below, one
  process, median of four: 313 ms with one branchy pass, 278 with the branch-free pass after
  any change, 242 now.

Measured on an 800 x 800 synthetic scan (613348 points to 64000, 2-core x86): 0.29-0.31 s
(with 16 points per cell; about 25 % less with the 64 that :func:`points_per_cell` now picks there)
against 0.67-0.90 s for fpsample's bucket FPS, which it replaced (README, speed section).
fpsample is also exact FPS, from a first point of its own choosing (point 0 on the scans tried);
without numba :mod:`st3d_edge.geometry.sampling` falls back to it.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from st3d_edge.geometry.fps import checked_request
from st3d_edge.geometry.grid_index import POINTS_PER_CELL, grid_layout, kernels


@functools.cache
def _kernels():
    import numba

    grid = kernels()
    cell_range, axis_gap = grid.cell_range, grid.axis_gap

    @numba.njit(cache=True, nogil=True)
    def tree_set(value, pos_of, size, leaf, v, q, order):
        # the tournament tree: larger distance wins, then the lower original index
        node = leaf + size
        value[node] = v
        pos_of[node] = q
        node //= 2
        while node >= 1:
            a, b = 2 * node, 2 * node + 1
            if value[b] > value[a] or (value[b] == value[a] and order[pos_of[b]] < order[pos_of[a]]):
                v, q = value[b], pos_of[b]
            else:
                v, q = value[a], pos_of[a]
            if value[node] == v and pos_of[node] == q:
                break  # nothing above changes either
            value[node] = v
            pos_of[node] = q
            node //= 2

    @numba.njit(cache=True, nogil=True)
    def sample(sp, order, starts, slot, dims, lo, h, zlo, zhi, n, first):
        # sp: the points cell by cell (float64); order[q]: the cloud index of sorted point q;
        # returns the samples and each one's squared distance to those before it when picked
        # (inf for the first); without the GIL, so that clouds can be sampled side by side
        total = sp.shape[0]
        cells = starts.shape[0] - 1
        nx, ny, nz = dims[0], dims[1], dims[2]
        nearest = np.full(total, np.inf)
        size = 1
        while size < cells:
            size *= 2
        value = np.full(2 * size, -np.inf)
        pos_of = np.zeros(2 * size, dtype=np.int64)
        cell_max = np.full(cells, np.inf)
        cell_arg = starts[:-1].copy()  # the point holding each cell's largest distance
        chosen = np.empty(n, dtype=np.int64)
        reach = np.full(n, np.inf)
        s = first
        chosen[0] = order[s]
        for step in range(1, n):
            sx, sy, sz = sp[s, 0], sp[s, 1], sp[s, 2]
            nearest[s] = -np.inf
            reach2 = np.inf if step == 1 else value[1]
            x0, x1, y0, y1, z0, z1 = 0, nx - 1, 0, ny - 1, 0, nz - 1
            if step > 1:
                r = math.sqrt(reach2)
                x0, x1 = cell_range(sx - r, sx + r, lo[0], h, nx)
                y0, y1 = cell_range(sy - r, sy + r, lo[1], h, ny)
                z0, z1 = cell_range(sz - r, sz + r, lo[2], h, nz)
            for gx in range(x0, x1 + 1):
                gap_x = axis_gap(sx, gx, lo[0], h, nx)
                for gy in range(y0, y1 + 1):
                    col = gx * ny + gy
                    a, b = max(z0, zlo[col]), min(z1, zhi[col])
                    if a > b:
                        continue
                    gap_y = axis_gap(sy, gy, lo[1], h, ny)
                    gap_xy = gap_x * gap_x + gap_y * gap_y
                    if gap_xy > 0.0 and gap_xy >= reach2:
                        continue  # as the cell test below
                    for gz in range(a, b + 1):
                        c = slot[col * nz + gz]
                        if c < 0:
                            continue
                        gap_z = axis_gap(sz, gz, lo[2], h, nz)
                        gap = gap_xy + gap_z * gap_z
                        if gap > 0.0 and gap >= cell_max[c]:
                            continue  # no point here can come closer, and s is not here
                        # without branches on the distances (a sample's -inf stays the
                        # minimum), so that the loop runs on vector lanes
                        top = nearest[cell_arg[c]]
                        for q in range(starts[c], starts[c + 1]):
                            dx = sp[q, 0] - sx
                            dy = sp[q, 1] - sy
                            dz = sp[q, 2] - sz
                            d2 = dx * dx + dy * dy + dz * dz
                            nearest[q] = d2 if d2 < nearest[q] else nearest[q]
                        # the cell's largest distance can only have changed if its holder's did
                        # (the others only fell, and a tie would already have been the holder)
                        if nearest[cell_arg[c]] != top or gap == 0.0:
                            # the cell's points are in index order: the first of equal
                            # distances is the lowest index, as the tournament wants
                            best_v, best_q = -np.inf, starts[c]
                            for q in range(starts[c], starts[c + 1]):
                                if nearest[q] > best_v:
                                    best_v, best_q = nearest[q], q
                            cell_max[c] = best_v
                            cell_arg[c] = best_q
                            tree_set(value, pos_of, size, c, best_v, best_q, order)
            s = pos_of[1]
            chosen[step] = order[s]
            reach[step] = value[1]
        return chosen, reach

    return sample


def points_per_cell(count: int) -> int:
    """Cell size for a cloud of ``count`` points: coarser cells for larger clouds (a step
    then walks fewer cells and the tournament tree is shallower). Any size gives the same
    samples; this one is the fastest measured (613348 points to 64000: 16 points per cell 437 ms,
    32: 386, 64: 318, 128: 334; 100000 to 8192: 16 fastest)."""
    return int(np.clip(round(count / 10000), POINTS_PER_CELL, 64))


def fps_grid(points, n: int, start: int = 0, cell_points: int | None = None) -> np.ndarray:
    """Exact FPS from ``points[start]``: ``min(n, N)`` indices (int64), as ``fps_exact``;
    ``cell_points``: points per grid cell (:func:`points_per_cell` by default)."""
    cloud, n, done = checked_request(points, n, start)
    if done is not None:
        return done
    return fps_grid_reach(cloud, n, start, cell_points)[0]


def fps_grid_reach(
    cloud: np.ndarray, n: int, start: int = 0, cell_points: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fps_grid` of a checked request (an (N, 3) cloud, 1 < n <= N), with each sample's
    squared distance to the samples before it when it was picked (inf for the first): float64,
    non-increasing. Holds no GIL while it samples."""
    cloud = cloud.astype(np.float64)
    if not np.isfinite(cloud).all():
        raise ValueError("points must be finite")
    cell_points = points_per_cell(len(cloud)) if cell_points is None else int(cell_points)
    lo, h, dims, slot, starts, order, zlo, zhi = grid_layout(cloud, cell_points)
    position = np.empty(len(cloud), dtype=np.int64)
    position[order] = np.arange(len(cloud))
    return _kernels()(
        np.take(cloud, order, axis=0),  # a third of the time of cloud[order], the same rows
        order,
        starts,
        slot,
        dims,
        lo,
        h,
        zlo,
        zhi,
        n,
        int(position[start]),
    )
