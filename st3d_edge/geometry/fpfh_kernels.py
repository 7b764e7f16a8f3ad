"""Numba kernels for :mod:`st3d_edge.geometry.fpfh`: one point per thread, no (m, K, 3) temporaries.

The numpy formulation builds float64 arrays of every (point, neighbour) pair, about 150 MB
each at m = 64000 and 100 neighbours, and spends seconds allocating them. These kernels walk
each point's neighbours in registers with the same float64 formulas in the same order
(``pair_features``, ``_bins``; no fastmath), so the histograms match the numpy ones to rounding
and the tests compare the two. The SPFH pair loop runs on vector lanes (``spfh``: the same bits
as the one-pair-at-a-time ``spfh_pairwise``, which the tests compare it with; 0.27 -> 0.13 s at
m = 64000 and 100 neighbours on 2 cores). numba is optional: without it
(:func:`st3d_edge.numba_support.numba_available`) :mod:`st3d_edge.geometry.fpfh` keeps its
numpy path.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

import numpy as np

from st3d_edge.numba_support import KERNEL_LOCK

# A pair whose angle f0 lies within this many bins of a bin boundary takes the exact atan2
# (about 5.7e-4 rad, against atan2_approx's error of under 3e-7 rad)
ANGLE_MARGIN = 1e-3
PACKED = 1 << 20  # a pair's column t and its packed bins (< bins**3) share one int64


@functools.cache
def _kernels():
    import numba

    @numba.njit(cache=True)
    def present(idx, dist, radius, i, t, m):
        # entry t of point i's list, cut as fpfh.within cuts it (the caller bounds t)
        return idx[i, t] < m and dist[i, t] < radius

    @numba.njit(inline="always", error_model="numpy", cache=True)
    def cosines(n1x, n1y, n1z, n2x, n2y, n2z, dx, dy, dz):
        # (|d|, n1.d / |d|, n2.d / |d|, and their magnitudes capped at 1: what the source/target
        # choice compares)
        length = np.sqrt(dx * dx + dy * dy + dz * dz)
        a1 = (n1x * dx + n1y * dy + n1z * dz) / length
        a2 = (n2x * dx + n2y * dy + n2z * dz) / length
        return length, a1, a2, min(abs(a1), 1.0), min(abs(a2), 1.0)

    @numba.njit(inline="always", error_model="numpy", cache=True)
    def frame(n1x, n1y, n1z, n2x, n2y, n2z, dx, dy, dz, a1, a2, swap):
        # the Darboux frame from the chosen source: (atan2's y and x for f0, f1, f2, |v|), by
        # selects, not a branch: the choice goes either way about half the time, and the vector
        # loop below needs it branch-free
        sx = n2x if swap else n1x
        sy = n2y if swap else n1y
        sz = n2z if swap else n1z
        tx = n1x if swap else n2x
        ty = n1y if swap else n2y
        tz = n1z if swap else n2z
        sign = -1.0 if swap else 1.0
        dx, dy, dz = sign * dx, sign * dy, sign * dz
        f2 = -a2 if swap else a1
        vx = dy * sz - dz * sy
        vy = dz * sx - dx * sz
        vz = dx * sy - dy * sx
        v_norm = np.sqrt(vx * vx + vy * vy + vz * vz)
        vx, vy, vz = vx / v_norm, vy / v_norm, vz / v_norm
        wx = sy * vz - sz * vy
        wy = sz * vx - sx * vz
        wz = sx * vy - sy * vx
        f1 = vx * tx + vy * ty + vz * tz
        return wx * tx + wy * ty + wz * tz, sx * tx + sy * ty + sz * tz, f1, f2, v_norm

    @numba.njit(inline="always", cache=True)
    def angle_position(f0, bins):
        # f0 in [-pi, pi] measured in bins from -pi
        return bins * (f0 + np.pi) / (2.0 * np.pi)

    @numba.njit(inline="always", cache=True)
    def packed_bins(b0, f1, f2, bins):
        # b0 + bins * (b1 + bins * b2), each bin clamped to [0, bins - 1]; f1, f2 in [-1, 1]
        b0 = min(max(b0, 0.0), bins - 1.0)
        b1 = min(max(np.floor(bins * (f1 + 1.0) * 0.5), 0.0), bins - 1.0)
        b2 = min(max(np.floor(bins * (f2 + 1.0) * 0.5), 0.0), bins - 1.0)
        return int(b0) + bins * (int(b1) + bins * int(b2))

    @numba.njit(inline="always", error_model="numpy", cache=True)
    def pair_bins(points, normals, i, j, bins):
        # the three bins of pair (i, j) packed as b0 + bins * (b1 + bins * b2); -1 where the
        # pair's frame is undefined (coincident points, or the line along the source's normal)
        n1x, n1y, n1z = normals[i, 0], normals[i, 1], normals[i, 2]
        n2x, n2y, n2z = normals[j, 0], normals[j, 1], normals[j, 2]
        dx = points[j, 0] - points[i, 0]
        dy = points[j, 1] - points[i, 1]
        dz = points[j, 2] - points[i, 2]
        length, a1, a2, c1, c2 = cosines(n1x, n1y, n1z, n2x, n2y, n2z, dx, dy, dz)
        if not length > 0.0:
            return -1
        # Open3D's source/target choice, arccos included (see fpfh.pair_features);
        # arccos falls with slope <= -1 on [0, 1], so arguments 1e-12 apart decide it
        # alone and only near-ties need the two arccos (same result, a third the time)
        if c1 < c2 - 1e-12:
            swap = True
        elif c1 > c2 + 1e-12:
            swap = False
        else:
            swap = np.arccos(c1) > np.arccos(c2)
        y, x, f1, f2, v_norm = frame(n1x, n1y, n1z, n2x, n2y, n2z, dx, dy, dz, a1, a2, swap)
        if not v_norm > 0.0:
            return -1
        return packed_bins(np.floor(angle_position(np.arctan2(y, x), bins)), f1, f2, bins)

    @numba.njit(inline="always", cache=True)
    def add_pair(out, i, code, increment, bins):
        out[i, code % bins] += increment
        out[i, bins + (code // bins) % bins] += increment
        out[i, 2 * bins + code // (bins * bins)] += increment

    @numba.njit(parallel=True, error_model="numpy", cache=True)
    def spfh_pairwise(points, normals, idx, dist, radius, columns, bins):
        # the reference: pair_bins for every pair, one at a time
        m = idx.shape[0]
        k = min(idx.shape[1], columns)
        out = np.zeros((m, 3 * bins))
        for i in numba.prange(m):
            count = 0
            for t in range(1, k):
                if present(idx, dist, radius, i, t, m):
                    count += 1
            if count == 0:
                continue
            increment = 100.0 / count
            for t in range(1, k):
                if present(idx, dist, radius, i, t, m):
                    code = pair_bins(points, normals, i, idx[i, t], bins)
                    if code >= 0:
                        add_pair(out, i, code, increment, bins)
        return out

    @numba.njit(inline="always", error_model="numpy", cache=True)
    def atan2_approx(y, x):
        # atan2 within 3e-7 rad (tests/test_geometry_fpfh.py), by selects: unlike libm's
        # atan2, a call, it lets the loop below run on vector lanes
        # (numpy's error model here and below: x / 0 is inf or NaN, as IEEE says, and such a
        # pair is left to pair_bins, instead of a ZeroDivisionError check in the loop)
        ax, ay = abs(x), abs(y)
        t = min(ax, ay) / max(ax, ay)
        t2 = t * t
        p = 0.006842312794519245 * t2 - 0.033725014806576525
        p = p * t2 + 0.0798101661131252
        p = p * t2 - 0.13247467497207338
        p = p * t2 + 0.19813199515208002
        p = p * t2 - 0.333183014334623
        p = (p * t2 + 0.9999966342941836) * t
        p = 0.5 * np.pi - p if ay > ax else p
        p = np.pi - p if x < 0.0 else p
        return -p if y < 0.0 else p

    @numba.njit(parallel=True, error_model="numpy", cache=True)
    def spfh(points, normals, idx, dist, radius, columns, bins):
        # pair_bins's bins, bit for bit, at a half of its time: per point, the neighbours are
        # gathered into contiguous arrays, then one loop without calls or branches does the
        # pair arithmetic on vector lanes (the same IEEE operations, so the same bits) with
        # atan2_approx; the pairs it cannot settle go to pair_bins: a source/target near-tie
        # (pair_bins compares arccos there), an undefined frame, or an angle within
        # ANGLE_MARGIN of a bin boundary, where atan2_approx's error could change the bin
        m = idx.shape[0]
        k = min(idx.shape[1], columns)
        out = np.zeros((m, 3 * bins))
        for i in numba.prange(m):
            qx, qy, qz = np.empty(k), np.empty(k), np.empty(k)
            nx, ny, nz = np.empty(k), np.empty(k), np.empty(k)
            code = np.empty(k, dtype=np.int64)
            count = 0
            for t in range(1, k):
                if present(idx, dist, radius, i, t, m):
                    j = idx[i, t]
                    qx[count], qy[count], qz[count] = points[j, 0], points[j, 1], points[j, 2]
                    nx[count], ny[count], nz[count] = normals[j, 0], normals[j, 1], normals[j, 2]
                    code[count] = t
                    count += 1
            if count == 0:
                continue
            increment = 100.0 / count
            px, py, pz = points[i, 0], points[i, 1], points[i, 2]
            n1x, n1y, n1z = normals[i, 0], normals[i, 1], normals[i, 2]
            for u in range(count):
                # pair_bins's formulas, its branches as selects
                n2x, n2y, n2z = nx[u], ny[u], nz[u]
                dx, dy, dz = qx[u] - px, qy[u] - py, qz[u] - pz
                length, a1, a2, c1, c2 = cosines(n1x, n1y, n1z, n2x, n2y, n2z, dx, dy, dz)
                swap = c1 < c2 - 1e-12
                settled = swap | (c1 > c2 + 1e-12)
                y, x, f1, f2, v_norm = frame(n1x, n1y, n1z, n2x, n2y, n2z, dx, dy, dz, a1, a2, swap)
                r0 = angle_position(atan2_approx(y, x), bins)
                b0 = np.floor(r0)
                # comparisons false on NaN: a NaN anywhere leaves the pair unsettled
                settled &= (r0 - b0 >= ANGLE_MARGIN) & (b0 + 1.0 - r0 >= ANGLE_MARGIN)
                settled &= (length > 0.0) & (v_norm > 0.0)
                packed = packed_bins(b0, f1, f2, bins)
                code[u] = code[u] * PACKED + packed if settled else -code[u]
            for u in range(count):
                c = code[u]
                c = pair_bins(points, normals, i, idx[i, -c], bins) if c < 0 else c % PACKED
                if c >= 0:
                    add_pair(out, i, c, increment, bins)
        return out

    @numba.njit(parallel=True, cache=True)
    def weighted_neighbour_sum(own, idx, dist, radius, columns):
        # sum_j own[j] / d_ij^2 over each point's neighbours (column 0, the point, excluded)
        m = idx.shape[0]
        k = min(idx.shape[1], columns)
        width = own.shape[1]
        out = np.empty((m, width))
        for i in numba.prange(m):
            # a local row: the compiler cannot keep out[i] in registers (out might alias own);
            # the same additions in the same order
            acc = np.zeros(width)
            for t in range(1, k):
                j = idx[i, t]
                d2 = dist[i, t] * dist[i, t]
                if not present(idx, dist, radius, i, t, m) or not d2 > 0.0:
                    continue
                w = 1.0 / d2
                for c in range(width):
                    acc[c] += w * own[j, c]
            out[i, :] = acc
        return out

    @numba.njit(parallel=True, cache=True)
    def covariances(points, idx, dist, radius, columns):
        # the (biased) covariance of each point's present neighbours, two passes like numpy's
        m = idx.shape[0]
        k = min(idx.shape[1], columns)
        out = np.zeros((m, 3, 3))
        for i in numba.prange(m):
            count = 0
            mx = my = mz = 0.0
            for t in range(k):
                j = idx[i, t]
                if present(idx, dist, radius, i, t, m):
                    count += 1
                    mx += points[j, 0]
                    my += points[j, 1]
                    mz += points[j, 2]
            if count == 0:
                continue
            mx, my, mz = mx / count, my / count, mz / count
            for t in range(k):
                j = idx[i, t]
                if present(idx, dist, radius, i, t, m):
                    x, y, z = points[j, 0] - mx, points[j, 1] - my, points[j, 2] - mz
                    out[i, 0, 0] += x * x
                    out[i, 0, 1] += x * y
                    out[i, 0, 2] += x * z
                    out[i, 1, 1] += y * y
                    out[i, 1, 2] += y * z
                    out[i, 2, 2] += z * z
            for a in range(3):
                for b in range(a, 3):
                    out[i, a, b] /= count
                    out[i, b, a] = out[i, a, b]
        return out

    return SimpleNamespace(
        spfh=spfh,
        spfh_pairwise=spfh_pairwise,
        atan2_approx=atan2_approx,
        weighted_neighbour_sum=weighted_neighbour_sum,
        covariances=covariances,
    )


def _cut(idx: np.ndarray, dist: np.ndarray | None, radius: float, columns: int | None):
    """The kernels' view of :func:`st3d_edge.geometry.fpfh.within`: the first ``columns`` entries
    (all by default) nearer than ``radius`` (no cut without ``dist``), read in place."""
    idx = np.ascontiguousarray(idx, np.int64)
    dist = np.zeros(idx.shape) if dist is None else np.ascontiguousarray(dist, np.float64)
    return idx, dist, float(radius), idx.shape[1] if columns is None else int(columns)


def spfh(
    points: np.ndarray,
    normals: np.ndarray,
    idx: np.ndarray,
    bins: int,
    dist: np.ndarray | None = None,
    radius: float = np.inf,
    columns: int | None = None,
    pairwise: bool = False,
) -> np.ndarray:
    """float64[m, 3 * bins]: :func:`st3d_edge.geometry.fpfh.spfh` by the kernel above; ``dist``,
    ``radius``, ``columns``: the lists cut as ``fpfh.within(idx, dist, radius, columns)``;
    ``pairwise``: one pair at a time with the exact atan2 (the reference, same bits, slower)."""
    kernels = _kernels()
    kernel = kernels.spfh_pairwise if pairwise else kernels.spfh
    with KERNEL_LOCK:
        return kernel(
            np.ascontiguousarray(points, np.float64),
            np.ascontiguousarray(normals, np.float64),
            *_cut(idx, dist, radius, columns),
            bins,
        )


def atan2_approx(y: float, x: float) -> float:
    """The vector loop's atan2 (for the tests of its error bound)."""
    return _kernels().atan2_approx(float(y), float(x))


def weighted_neighbour_sum(
    own: np.ndarray, idx: np.ndarray, dist: np.ndarray, radius: float = np.inf, columns: int | None = None
) -> np.ndarray:
    """float64[m, c]: sum over each point's neighbours of ``own[j] / d^2`` (self and d = 0
    skipped), the lists cut at ``radius`` and ``columns`` as :func:`spfh`'s."""
    kernel = _kernels().weighted_neighbour_sum
    with KERNEL_LOCK:
        return kernel(np.ascontiguousarray(own, np.float64), *_cut(idx, dist, radius, columns))


def covariances(
    points: np.ndarray,
    idx: np.ndarray,
    dist: np.ndarray | None = None,
    radius: float = np.inf,
    columns: int | None = None,
) -> np.ndarray:
    """float64[m, 3, 3]: the covariance of each point's neighbours (``idx`` entries >= m absent),
    the lists cut at ``radius`` and ``columns`` as :func:`spfh`'s."""
    kernel = _kernels().covariances
    with KERNEL_LOCK:
        return kernel(np.ascontiguousarray(points, np.float64), *_cut(idx, dist, radius, columns))
