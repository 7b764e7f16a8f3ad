"""Each point's k nearest points of the same cloud, on a uniform grid (numba): the kNN graph and
FPFH's neighbours.

The block search: the cloud is put on a grid sized so that a point's k nearest almost always lie
in the 3 x 3 x 3 block of cells around its own (:func:`block_points_per_cell`). The block's
points are gathered once per cell, in index order, for every point of that cell; each point
computes its squared distances to them, counts them into :data:`BUCKETS` buckets of the range
that is certainly inside the block, places the points of the buckets up to the k-th by a
counting sort and orders each bucket by insertion (stable: ties by index). A bucket sort instead
of a heap or a selection: its branches are predictable, and the per-point cost fell from about
15 to 4 microseconds. That is exact whenever the k-th distance is shorter than the way out of
the block; a point where it is not (a sparse region, the edge of a hole, a tiny cloud) is
answered by the ring search instead.

The ring search (the reference the block search is tested against, bit for bit): a point scans
the cells around its own ring by ring into a bounded max-heap, skips a cell whose nearest
possible point is farther than the heap's worst, and stops once the heap is full and every
unvisited cell lies beyond its worst; :data:`POINTS_PER_CELL` points per non-empty cell
(measured: 4, 8, 16, 32, 64 -> 8 fastest at k = 100).

Both are exact: the same distances as the kd-tree (all in float64) and the same indices up to the
order of exactly equidistant points, which here is by index. On 64000 sampled points of an
800 x 800 scan, 2 cores (ms, median of 3, one process): k = 100 ring 474, block 162; k = 32
block 103, pykdtree 156 (see :mod:`st3d_edge.geometry.kdtree` for where each is used).

The grid is :mod:`st3d_edge.geometry.grid_index`'s.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from st3d_edge.geometry.grid_index import grid_layout
from st3d_edge.geometry.grid_index import kernels as grid_kernels

POINTS_PER_CELL = 8  # the ring search's
BUCKETS = 256


@functools.cache
def kernels():
    """The jitted (ring search of every point, block search), compiled once."""
    import numba

    grid = grid_kernels()
    axis_gap, own_cell = grid.axis_gap, grid.own_cell

    @numba.njit(cache=True)
    def worse(da, ia, db, ib):
        # (distance, index) order: ties go to the lower index
        return da > db or (da == db and ia > ib)

    @numba.njit(cache=True)
    def swap(hd, hi, a, b):
        hd[a], hd[b] = hd[b], hd[a]
        hi[a], hi[b] = hi[b], hi[a]

    @numba.njit(cache=True)
    def sift_down(hd, hi, size):
        i = 0
        child = 1
        while child < size:
            if child + 1 < size and worse(hd[child + 1], hi[child + 1], hd[child], hi[child]):
                child += 1
            if not worse(hd[child], hi[child], hd[i], hi[i]):
                return
            swap(hd, hi, i, child)
            i, child = child, 2 * child + 1

    @numba.njit(cache=True)
    def sift_up(hd, hi, i):
        while i > 0 and worse(hd[i], hi[i], hd[(i - 1) // 2], hi[(i - 1) // 2]):
            swap(hd, hi, i, (i - 1) // 2)
            i = (i - 1) // 2

    @numba.njit(cache=True)
    def unvisited_bound(x, g, ring, lo, h, cells):
        # distance from x to the cells beyond [g - ring, g + ring] on one axis (inf where the
        # grid ends: the border cells, unbounded outwards, are inside the block by then), less a
        # hair, as axis_gap, so that rounding in the cell ids cannot make it an overestimate
        bound = np.inf
        if g - ring > 0:
            bound = min(bound, x - (lo + (g - ring) * h))
        if g + ring < cells - 1:
            bound = min(bound, lo + (g + ring + 1) * h - x)
        return bound - 1e-9 * h

    @numba.njit(cache=True)
    def block_bound(x, y, z, gx, gy, gz, ring, lo, h, dims):
        return min(
            unvisited_bound(x, gx, ring, lo[0], h, dims[0]),
            unvisited_bound(y, gy, ring, lo[1], h, dims[1]),
            unvisited_bound(z, gz, ring, lo[2], h, dims[2]),
        )

    @numba.njit(cache=True)
    def scan_cell(points, cell, starts, order, x, y, z, hd, hi, size, k):
        # offer the cell's points to the heap; returns the heap's new size
        for t in range(starts[cell], starts[cell + 1]):
            q = order[t]
            ex = points[q, 0] - x
            ey = points[q, 1] - y
            ez = points[q, 2] - z
            d = ex * ex + ey * ey + ez * ez
            if size < k:
                hd[size], hi[size] = d, q
                sift_up(hd, hi, size)
                size += 1
            elif worse(hd[0], hi[0], d, q):
                hd[0], hi[0] = d, q
                sift_down(hd, hi, k)
        return size

    @numba.njit(cache=True)
    def ring_search(points, p, k, lo, h, dims, slot, starts, order, hd, hi, out_d, out_i):
        # point p's k nearest into row p of out_d/out_i; hd/hi: a k-long heap to work in
        x, y, z = points[p, 0], points[p, 1], points[p, 2]
        nx, ny, nz = dims[0], dims[1], dims[2]
        gx, gy, gz = own_cell(x, lo[0], h, nx), own_cell(y, lo[1], h, ny), own_cell(z, lo[2], h, nz)
        size = 0
        ring = 0
        while True:
            # the cells at Chebyshev distance ``ring`` from the point's own: a full z run
            # where x or y is on the ring's face, else only the two z faces
            for ix in range(max(gx - ring, 0), min(gx + ring, nx - 1) + 1):
                dx = axis_gap(x, ix, lo[0], h, nx)
                for iy in range(max(gy - ring, 0), min(gy + ring, ny - 1) + 1):
                    dxy = dx * dx + axis_gap(y, iy, lo[1], h, ny) ** 2
                    face = abs(ix - gx) == ring or abs(iy - gy) == ring
                    if face:
                        iz = max(gz - ring, 0)
                    else:  # ring > 0 here: the lower z face if the grid has it, else the upper
                        iz = gz - ring if gz - ring >= 0 else gz + ring
                    top = min(gz + ring, nz - 1)
                    while iz <= top:
                        s = slot[(ix * ny + iy) * nz + iz]
                        dz = axis_gap(z, iz, lo[2], h, nz)
                        if s >= 0 and (size < k or dxy + dz * dz <= hd[0]):
                            size = scan_cell(points, s, starts, order, x, y, z, hd, hi, size, k)
                        iz += 1 if face else 2 * ring
            bound = block_bound(x, y, z, gx, gy, gz, ring, lo, h, dims)
            if bound == np.inf or (size == k and bound > 0 and hd[0] < bound * bound):
                break
            ring += 1
        for m in range(size - 1, -1, -1):  # heap sort: nearest first
            out_d[p, m], out_i[p, m] = math.sqrt(hd[0]), hi[0]
            hd[0], hi[0] = hd[m], hi[m]
            sift_down(hd, hi, m)

    @numba.njit(parallel=True, cache=True)
    def ring_knn(points, k, lo, h, dims, slot, starts, order, chunks):
        n = points.shape[0]
        out_d = np.empty((n, k), dtype=np.float64)
        out_i = np.empty((n, k), dtype=np.int64)
        for c in numba.prange(chunks):
            hd = np.empty(k, dtype=np.float64)  # max-heap of squared distances: the root is the worst
            hi = np.empty(k, dtype=np.int64)
            for p in range(c * n // chunks, (c + 1) * n // chunks):
                ring_search(points, p, k, lo, h, dims, slot, starts, order, hd, hi, out_d, out_i)
        return out_d, out_i

    @numba.njit(cache=True)
    def block_slots(gx, gy, gz, dims, slot, out):
        # the non-empty cells of the 3 x 3 x 3 block around (gx, gy, gz) into out (27 long);
        # returns their count
        nx, ny, nz = dims[0], dims[1], dims[2]
        count = 0
        for ix in range(max(gx - 1, 0), min(gx + 1, nx - 1) + 1):
            for iy in range(max(gy - 1, 0), min(gy + 1, ny - 1) + 1):
                for iz in range(max(gz - 1, 0), min(gz + 1, nz - 1) + 1):
                    s = slot[(ix * ny + iy) * nz + iz]
                    if s >= 0:
                        out[count] = s
                        count += 1
        return count

    @numba.njit(cache=True)
    def gather_block(points, gx, gy, gz, dims, slot, starts, order, bi, bx, by, bz):
        # the points of the 3 x 3 x 3 cells around (gx, gy, gz) into bi/bx/by/bz, in index order
        # (so that a stable sort by distance leaves ties by index); returns their count
        cells = np.empty(27, dtype=np.int64)
        m = 0
        for u in range(block_slots(gx, gy, gz, dims, slot, cells)):
            for t in range(starts[cells[u]], starts[cells[u] + 1]):
                bi[m] = order[t]
                m += 1
        bi[:m].sort()
        for j in range(m):
            bx[j], by[j], bz[j] = points[bi[j], 0], points[bi[j], 1], points[bi[j], 2]
        return m

    @numba.njit(cache=True)
    def block_rank(d2, bi, m, k, reach2, counts, at, keep_d, keep_i, out_d, out_i, p):
        # row p of out_d/out_i from the block's squared distances d2[:m] (points bi[:m], in index
        # order): a counting sort of the points into BUCKETS buckets of [0, reach2) up to the
        # bucket of the k-th, then an insertion sort within each bucket (stable: ties by index).
        # Returns False, writing nothing, if fewer than k points are closer than reach.
        nb = counts.shape[0]
        scale = nb / reach2
        counts[:] = 0
        for j in range(m):
            b = d2[j] * scale
            if b < nb:
                counts[int(b)] += 1
        total = 0
        last = -1
        for b in range(nb):
            at[b] = total
            total += counts[b]
            if total >= k:
                last = b
                break
        if last < 0:
            return False
        for j in range(m):
            b = d2[j] * scale
            if b < last + 1:
                slot = at[int(b)]
                keep_d[slot], keep_i[slot] = d2[j], bi[j]
                at[int(b)] = slot + 1
        start = 0
        for b in range(last + 1):
            stop = at[b]  # now the bucket's end
            for u in range(start + 1, stop):
                dv, iv = keep_d[u], keep_i[u]
                v = u - 1
                while v >= start and keep_d[v] > dv:
                    keep_d[v + 1], keep_i[v + 1] = keep_d[v], keep_i[v]
                    v -= 1
                keep_d[v + 1], keep_i[v + 1] = dv, iv
            start = stop
        for r in range(k):
            out_d[p, r] = math.sqrt(keep_d[r])
            out_i[p, r] = keep_i[r]
        return True

    @numba.njit(parallel=True, cache=True)
    def block_knn(points, k, lo, h, dims, slot, starts, order, most, chunks, out_d, out_i):
        # most: the largest 3 x 3 x 3 block's point count (the buffers' size)
        cells = starts.shape[0] - 1
        for c in numba.prange(chunks):
            bi = np.empty(most, dtype=np.int64)
            bx, by, bz = np.empty(most), np.empty(most), np.empty(most)
            d2 = np.empty(most)
            keep_d = np.empty(most)
            keep_i = np.empty(most, dtype=np.int64)
            counts = np.empty(BUCKETS, dtype=np.int64)
            at = np.empty(BUCKETS, dtype=np.int64)
            hd = np.empty(k, dtype=np.float64)
            hi = np.empty(k, dtype=np.int64)
            for cell in range(c * cells // chunks, (c + 1) * cells // chunks):
                first = order[starts[cell]]
                gx = own_cell(points[first, 0], lo[0], h, dims[0])
                gy = own_cell(points[first, 1], lo[1], h, dims[1])
                gz = own_cell(points[first, 2], lo[2], h, dims[2])
                m = gather_block(points, gx, gy, gz, dims, slot, starts, order, bi, bx, by, bz)
                for t in range(starts[cell], starts[cell + 1]):
                    p = order[t]
                    x, y, z = points[p, 0], points[p, 1], points[p, 2]
                    # every point outside the block is at least this far: only the block's
                    # points closer than it can be ranked without looking further
                    reach = block_bound(x, y, z, gx, gy, gz, 1, lo, h, dims)
                    for j in range(m):
                        ex = bx[j] - x
                        ey = by[j] - y
                        ez = bz[j] - z
                        d2[j] = ex * ex + ey * ey + ez * ez
                    done = False
                    if reach > 0 and m >= k:
                        reach2 = reach * reach if reach < np.inf else 2.0 * d2[:m].max() + 1.0
                        done = block_rank(d2, bi, m, k, reach2, counts, at, keep_d, keep_i, out_d, out_i, p)
                    if not done:
                        ring_search(points, p, k, lo, h, dims, slot, starts, order, hd, hi, out_d, out_i)

    @numba.njit(cache=True)
    def largest_block(dims, slot, starts):
        # the most points any 3 x 3 x 3 block around a non-empty cell holds
        nx, ny, nz = dims[0], dims[1], dims[2]
        cells = np.empty(27, dtype=np.int64)
        most = 0
        for gx in range(nx):
            for gy in range(ny):
                for gz in range(nz):
                    if slot[(gx * ny + gy) * nz + gz] < 0:
                        continue
                    m = 0
                    for u in range(block_slots(gx, gy, gz, dims, slot, cells)):
                        m += starts[cells[u] + 1] - starts[cells[u]]
                    most = max(most, m)
        return most

    return ring_knn, block_knn, largest_block


def block_points_per_cell(k: int) -> int:
    """The block search's cell size, in points per non-empty cell, for k neighbours: big enough
    that the k nearest of most points lie in the 3 x 3 x 3 block, small enough that the block
    holds few more. Measured on 64000 sampled points of a scan: k = 100 -> 32, 40, 56 about equal
    (24 slower: more points fall back to the ring search); k = 32 -> 12 best of 8, 12, 16, 24."""
    return max(8, round(0.4 * k))


def grid_knn(points: np.ndarray, k: int, method: str = "block") -> tuple[np.ndarray, np.ndarray]:
    """(float64[m, k] distances, int64[m, k] indices), nearest first, of each point's k nearest
    points of the same cloud (itself included, at distance 0). Needs numba and 1 <= k <= m.
    ``method``: ``block`` (the fast one) or ``ring`` (the reference); the same results."""
    cloud = np.ascontiguousarray(points, dtype=np.float64)
    if not 1 <= k <= len(cloud):
        raise ValueError(f"k must be in [1, {len(cloud)}], got {k}")
    if method not in ("block", "ring"):
        raise ValueError(f"method must be 'block' or 'ring', got {method!r}")
    import numba

    ring_knn, block_knn, largest_block = kernels()
    chunks = numba.get_num_threads() * 8  # small chunks: rows near holes and borders cost more
    if method == "ring":
        lo, h, dims, slot, starts, order, _, _ = grid_layout(cloud, POINTS_PER_CELL)
        return ring_knn(cloud, int(k), lo, h, dims, slot, starts, order, chunks)
    lo, h, dims, slot, starts, order, _, _ = grid_layout(cloud, block_points_per_cell(k))
    most = max(int(largest_block(dims, slot, starts)), 1)
    # numpy's allocation: large arrays get huge pages, which numba's own would not (a tenth of
    # the time went to page faults)
    out_d, out_i = np.empty((len(cloud), k)), np.empty((len(cloud), k), dtype=np.int64)
    block_knn(cloud, int(k), lo, h, dims, slot, starts, order, most, chunks, out_d, out_i)
    return out_d, out_i
