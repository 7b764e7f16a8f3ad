"""A uniform grid over a point cloud (numba): the index the exact grid FPS and the grid kNN walk.

Cells are cubic, sized for about ``points_per_cell`` points per non-empty cell
(:data:`POINTS_PER_CELL` for the FPS; a scan is a surface, so the count grows with the square
of the cell size), over the central
:data:`GRID_QUANTILES` of each axis so that a few far outliers do not make every cell coarse;
points beyond that box belong to the border cells, which are unbounded outwards (clamping a
cell coordinate moves it by no more than the point moved, so "cells within reach" stays
complete). At most :data:`MAX_CELLS` cells in the dense index. Points are stored cell by cell,
in index order within a cell.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import numpy as np

POINTS_PER_CELL = 16
MAX_CELLS = 4_000_000  # the dense cell index: 16 MB of int32
GRID_QUANTILES = (0.001, 0.999)
QUANTILE_POINTS = 65536  # about this many points (every few) give the quantiles


@functools.cache
def kernels():
    """The jitted kernels by name (``cell_ids``, ``layout``, ``cell_range``, ``axis_gap``,
    ``column_extents``, ``own_cell``), compiled once; without the GIL, so that two clouds can be
    laid out side by side (:mod:`st3d_edge.geometry.split_fps`)."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def own_cell(x, lo, h, cells):
        # the cell of coordinate x on one axis; every search that relies on "a point lies in
        # its own cell" must place it by this same expression
        return min(max(int((x - lo) / h), 0), cells - 1)

    @numba.njit(cache=True, nogil=True)
    def cell_ids(points, lo, h, dims):
        out = np.empty(points.shape[0], dtype=np.int64)
        for p in range(points.shape[0]):
            gx = own_cell(points[p, 0], lo[0], h, dims[0])
            gy = own_cell(points[p, 1], lo[1], h, dims[1])
            gz = own_cell(points[p, 2], lo[2], h, dims[2])
            out[p] = (gx * dims[1] + gy) * dims[2] + gz
        return out

    @numba.njit(cache=True, nogil=True)
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

    @numba.njit(cache=True, nogil=True)
    def cell_range(a, b, lo, h, cells):
        # the cells [i0, i1] that the interval [a, b] meets on one axis (border cells extend
        # to infinity: points outside the gridded box were put there)
        i0 = min(max(int(math.floor((a - lo) / h)), 0), cells - 1)
        i1 = min(max(int(math.floor((b - lo) / h)), 0), cells - 1)
        return i0, i1

    @numba.njit(cache=True, nogil=True)
    def axis_gap(x, g, lo, h, cells):
        # distance from x to cell g's extent on one axis; the border cells are unbounded outwards,
        # and every cell is widened by a hair so that rounding in cell_ids cannot put a point
        # outside its cell's box (the gap must stay a lower bound)
        lower = -np.inf if g == 0 else lo + g * h - 1e-9 * h
        upper = np.inf if g == cells - 1 else lo + (g + 1) * h + 1e-9 * h
        return max(lower - x, 0.0, x - upper)

    @numba.njit(cache=True, nogil=True)
    def column_extents(slot, dims):
        # each (x, y) column's lowest and highest non-empty z cell (nz and -1 when empty)
        nx, ny, nz = dims[0], dims[1], dims[2]
        zlo = np.full(nx * ny, nz, dtype=np.int64)
        zhi = np.full(nx * ny, -1, dtype=np.int64)
        for col in range(nx * ny):
            for gz in range(nz):
                if slot[col * nz + gz] >= 0:
                    zlo[col] = min(zlo[col], gz)
                    zhi[col] = gz
        return zlo, zhi

    return SimpleNamespace(
        cell_ids=cell_ids,
        layout=layout,
        cell_range=cell_range,
        axis_gap=axis_gap,
        column_extents=column_extents,
        own_cell=own_cell,
    )


def grid_cells(
    cloud: np.ndarray, points_per_cell: int = POINTS_PER_CELL
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """(lower corner float64[3], cell size, cells per axis int64[3], every point's dense cell id
    int64[N]) for about ``points_per_cell`` points per non-empty cell.

    The grid spans the cloud's central :data:`GRID_QUANTILES` on each axis, so that a few far
    outliers do not make every cell coarse; points beyond it belong to the border cells, which
    the sampler treats as unbounded outwards.
    """
    cell_ids = kernels().cell_ids
    # the quantiles of every few points: the grid only needs the box roughly, and the exact
    # quantiles of a 600k-point scan took 20 ms
    step = max(1, len(cloud) // QUANTILE_POINTS)
    lo, hi = np.quantile(cloud[::step], GRID_QUANTILES, axis=0)
    # a flat axis (a plate seen head-on with quantised depth: every z equal) must not shrink the
    # volume the first cell size comes from, or the cells come out a hair wide
    extent = np.maximum(hi - lo, max(1e-9, 1e-3 * float(np.max(hi - lo))))
    h = float(np.cbrt(np.prod(extent) / max(len(cloud) / points_per_cell, 1.0)))
    for attempt in range(7):
        dims = np.floor(extent / h).astype(np.int64) + 1
        if np.prod(dims) > MAX_CELLS:
            h *= float(np.cbrt(np.prod(dims) / MAX_CELLS)) * 1.01
            continue
        cid = cell_ids(cloud, lo, h, dims)
        per_cell = len(cloud) / np.count_nonzero(np.bincount(cid, minlength=int(np.prod(dims))))
        if points_per_cell / 4 <= per_cell <= 2 * points_per_cell or attempt == 6:
            return lo, h, dims, cid
        h /= math.sqrt(per_cell / points_per_cell)  # on a surface the count grows with h^2
    dims = np.floor(extent / h).astype(np.int64) + 1
    return lo, h, dims, cell_ids(cloud, lo, h, dims)


def grid_layout(cloud: np.ndarray, points_per_cell: int = POINTS_PER_CELL):
    """The grid of a float64 cloud: (lo, h, dims, slot, starts, order, zlo, zhi), where
    ``slot[dense cell]`` is the non-empty cell's number (-1 if empty), its points are
    ``order[starts[c]:starts[c + 1]]`` and ``zlo``/``zhi`` bound each column's non-empty cells."""
    grid = kernels()
    lo, h, dims, cid = grid_cells(cloud, points_per_cell)
    slot, starts, order = grid.layout(cid, int(np.prod(dims)))
    zlo, zhi = grid.column_extents(slot, dims)
    return lo, h, dims, slot, starts, order, zlo, zhi
