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
* Cells: a uniform grid over the central :data:`GRID_QUANTILES` of each axis (see
  :func:`grid_cells`) with cubic cells sized for about :data:`POINTS_PER_CELL` points per
  non-empty cell (a scan is a surface, so the count grows with the square of the cell size),
  at most :data:`MAX_CELLS` cells in the dense index. Points are stored cell by cell, in index
  order within a cell.

Measured on an 800 x 800 synthetic scan (613348 points to 64000, 2-core x86): 0.29-0.31 s
against 0.67-0.90 s for fpsample's bucket FPS, which it replaced (README, speed section).
fpsample is also exact FPS, from a first point of its own choosing (point 0 on the scans tried);
without numba :mod:`st3d_edge.geometry.sampling` falls back to it.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from st3d_edge.geometry.fps import checked_request

POINTS_PER_CELL = 16
MAX_CELLS = 4_000_000  # the dense cell index: 16 MB of int32
GRID_QUANTILES = (0.001, 0.999)


@functools.cache
def _kernels():
    import numba

    @numba.njit(cache=True)
    def cell_ids(points, lo, h, dims):
        out = np.empty(points.shape[0], dtype=np.int64)
        for p in range(points.shape[0]):
            gx = min(max(int((points[p, 0] - lo[0]) / h), 0), dims[0] - 1)
            gy = min(max(int((points[p, 1] - lo[1]) / h), 0), dims[1] - 1)
            gz = min(max(int((points[p, 2] - lo[2]) / h), 0), dims[2] - 1)
            out[p] = (gx * dims[1] + gy) * dims[2] + gz
        return out

    @numba.njit(cache=True)
    def layout(cid, total):
        # counting sort by cell; non-empty cells numbered in cell order; stable within a cell
        count = np.zeros(total, dtype=np.int64)
        for p in range(cid.shape[0]):
            count[cid[p]] += 1
        slot = np.full(total, -1, dtype=np.int32)
        cells = 0
        for c in range(total):
            if count[c] > 0:
                slot[c] = cells
                cells += 1
        starts = np.empty(cells + 1, dtype=np.int64)
        at = 0
        for c in range(total):
            if count[c] > 0:
                starts[slot[c]] = at
                at += count[c]
        starts[cells] = at
        fill = starts[:cells].copy()
        order = np.empty(cid.shape[0], dtype=np.int64)
        for p in range(cid.shape[0]):
            s = slot[cid[p]]
            order[fill[s]] = p
            fill[s] += 1
        return slot, starts, order

    @numba.njit(cache=True)
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

    @numba.njit(cache=True)
    def cell_range(a, b, lo, h, cells):
        # the cells [i0, i1] that the interval [a, b] meets on one axis (border cells extend
        # to infinity: points outside the gridded box were put there)
        i0 = min(max(int(math.floor((a - lo) / h)), 0), cells - 1)
        i1 = min(max(int(math.floor((b - lo) / h)), 0), cells - 1)
        return i0, i1

    @numba.njit(cache=True)
    def axis_gap(x, g, lo, h, cells):
        # distance from x to cell g's extent on one axis; the border cells are unbounded outwards,
        # and every cell is widened by a hair so that rounding in cell_ids cannot put a point
        # outside its cell's box (the gap must stay a lower bound)
        lower = -np.inf if g == 0 else lo + g * h - 1e-9 * h
        upper = np.inf if g == cells - 1 else lo + (g + 1) * h + 1e-9 * h
        return max(lower - x, 0.0, x - upper)

    @numba.njit(cache=True)
    def sample(sp, order, starts, slot, dims, lo, h, n, first):
        # sp: the points cell by cell (float64); order[q]: the cloud index of sorted point q
        total = sp.shape[0]
        cells = starts.shape[0] - 1
        nx, ny, nz = dims[0], dims[1], dims[2]
        zlo = np.full(nx * ny, nz, dtype=np.int64)  # each column's non-empty z cells
        zhi = np.full(nx * ny, -1, dtype=np.int64)
        for col in range(nx * ny):
            for gz in range(nz):
                if slot[col * nz + gz] >= 0:
                    zlo[col] = min(zlo[col], gz)
                    zhi[col] = gz
        nearest = np.full(total, np.inf)
        size = 1
        while size < cells:
            size *= 2
        value = np.full(2 * size, -np.inf)
        pos_of = np.zeros(2 * size, dtype=np.int64)
        cell_max = np.full(cells, np.inf)
        chosen = np.empty(n, dtype=np.int64)
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
                        best_v, best_q = -np.inf, starts[c]
                        changed = False
                        for q in range(starts[c], starts[c + 1]):
                            v = nearest[q]
                            if v != -np.inf:
                                dx = sp[q, 0] - sx
                                dy = sp[q, 1] - sy
                                dz = sp[q, 2] - sz
                                d2 = dx * dx + dy * dy + dz * dz
                                if d2 < v:
                                    nearest[q] = d2
                                    v = d2
                                    changed = True
                            if v > best_v or (v == best_v and order[q] < order[best_q]):
                                best_v, best_q = v, q
                        if changed or gap == 0.0:
                            cell_max[c] = best_v
                            tree_set(value, pos_of, size, c, best_v, best_q, order)
            s = pos_of[1]
            chosen[step] = order[s]
        return chosen

    return cell_ids, layout, sample


def grid_cells(cloud: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """(lower corner float64[3], cell size, cells per axis int64[3], every point's dense cell id
    int64[N]) for about :data:`POINTS_PER_CELL` points per non-empty cell.

    The grid spans the cloud's central :data:`GRID_QUANTILES` on each axis, so that a few far
    outliers do not make every cell coarse; points beyond it belong to the border cells, which
    the sampler treats as unbounded outwards.
    """
    cell_ids, *_ = _kernels()
    lo, hi = np.quantile(cloud, GRID_QUANTILES, axis=0)
    extent = np.maximum(hi - lo, 1e-9)
    h = float(np.cbrt(np.prod(extent) / max(len(cloud) / POINTS_PER_CELL, 1.0)))
    for attempt in range(7):
        dims = np.floor(extent / h).astype(np.int64) + 1
        if np.prod(dims) > MAX_CELLS:
            h *= float(np.cbrt(np.prod(dims) / MAX_CELLS)) * 1.01
            continue
        cid = cell_ids(cloud, lo, h, dims)
        per_cell = len(cloud) / np.count_nonzero(np.bincount(cid, minlength=int(np.prod(dims))))
        if per_cell <= 2 * POINTS_PER_CELL or attempt == 6:
            return lo, h, dims, cid
        h /= math.sqrt(per_cell / POINTS_PER_CELL)  # on a surface the count grows with h^2
    dims = np.floor(extent / h).astype(np.int64) + 1
    return lo, h, dims, cell_ids(cloud, lo, h, dims)


def fps_grid(points, n: int, start: int = 0) -> np.ndarray:
    """Exact FPS from ``points[start]``: ``min(n, N)`` indices (int64), as ``fps_exact``."""
    cloud, n, done = checked_request(points, n, start)
    if done is not None:
        return done
    cloud = cloud.astype(np.float64)
    if not np.isfinite(cloud).all():
        raise ValueError("points must be finite")
    _, layout, sample = _kernels()
    lo, h, dims, cid = grid_cells(cloud)
    slot, starts, order = layout(cid, int(np.prod(dims)))
    position = np.empty(len(cloud), dtype=np.int64)
    position[order] = np.arange(len(cloud))
    return sample(
        np.ascontiguousarray(cloud[order]), order, starts, slot, dims, lo, h, n, int(position[start])
    )
