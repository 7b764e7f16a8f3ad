"""The eigenvector of the smallest eigenvalue of many symmetric 3 x 3 matrices (numba): the
normals of :mod:`st3d_edge.geometry.fpfh`.

Two solvers, by name (:data:`SOLVERS`):

* ``lapack``: numpy's ``eigh`` (LAPACK's ``dsyevd``) per matrix, from every thread: numpy's
  bits exactly. About 1.5 us a matrix (a workspace query and an allocation each): 0.10 s for
  the 64000 normals of an 800 x 800 scan on 2 cores.
* ``closed-form``: the eigenvalues by Smith's trigonometric formula (1961) on the matrix
  scaled to its largest entry, the eigenvector as the longest cross product of two rows of
  ``A - lambda_min I`` (the way Open3D's and PCL's normal estimation solve it): 0.005 s for
  the same normals. A matrix whose two smallest eigenvalues are closer than
  :data:`GAP` times its eigenvalue spread (a line, a point, a sphere: the direction is
  ill-defined and the closed form loses digits) goes to LAPACK.
  On the runtime scan's 64000 neighbourhoods the two solvers' normals agree to 1e-15 (no
  fallback), and the FPFH histograms built on them differ in 16 points by one pair each
  (a source/target near-tie falling the other way); the accuracy effect is measured in
  benchmarks/scoring_approximations.py (README, speed section).

Either solver's sign is arbitrary: the caller orients the normals.
"""

from __future__ import annotations

import functools

import numpy as np

from st3d_edge.numba_support import KERNEL_LOCK

SOLVERS = ("closed-form", "lapack")
# the closed form only where the smallest eigenvalue is this far (relative to the spread) from
# the next: its eigenvector's error is then ~1e-16 / GAP, far below the 1e-12 that decides
# FPFH's source/target ties
GAP = 1e-3


@functools.cache
def _kernels():
    import math

    import numba

    @numba.njit(inline="always", cache=True)
    def lapack_into(cov, i, out):
        _, vectors = np.linalg.eigh(cov[i])
        for r in range(3):
            out[i, r] = vectors[r, 0]

    @numba.njit(parallel=True, cache=True)
    def lapack(cov):
        # numpy's batched eigh makes one LAPACK call per matrix on one thread (170 ms at
        # m = 64000); the same LAPACK routine called by numba from every thread
        m = cov.shape[0]
        out = np.empty((m, 3))
        for i in numba.prange(m):
            lapack_into(cov, i, out)
        return out

    @numba.njit(parallel=True, cache=True)
    def closed_form(cov, gap):
        m = cov.shape[0]
        out = np.empty((m, 3))
        for i in numba.prange(m):
            a00, a01, a02 = cov[i, 0, 0], cov[i, 0, 1], cov[i, 0, 2]
            a11, a12, a22 = cov[i, 1, 1], cov[i, 1, 2], cov[i, 2, 2]
            scale = max(abs(a00), abs(a01), abs(a02), abs(a11), abs(a12), abs(a22))
            if not scale > 0.0:  # zero (or NaN): LAPACK's answer, whatever it is
                lapack_into(cov, i, out)
                continue
            a00, a01, a02 = a00 / scale, a01 / scale, a02 / scale
            a11, a12, a22 = a11 / scale, a12 / scale, a22 / scale
            q = (a00 + a11 + a22) / 3.0
            b00, b11, b22 = a00 - q, a11 - q, a22 - q
            off = a01 * a01 + a02 * a02 + a12 * a12
            p = math.sqrt((b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * off) / 6.0)
            if not p > 0.0:  # a multiple of the identity
                lapack_into(cov, i, out)
                continue
            det = b00 * (b11 * b22 - a12 * a12) - a01 * (a01 * b22 - a12 * a02)
            det += a02 * (a01 * a12 - b11 * a02)
            phi = math.acos(min(max(det / (2.0 * p * p * p), -1.0), 1.0)) / 3.0
            largest = q + 2.0 * p * math.cos(phi)
            smallest = q + 2.0 * p * math.cos(phi + 2.0 * math.pi / 3.0)
            middle = 3.0 * q - largest - smallest
            if not middle - smallest > gap * (largest - smallest):
                lapack_into(cov, i, out)
                continue
            # the rows of A - smallest I span the plane normal to the eigenvector: the longest
            # cross product of two of them is the best-conditioned
            r0x, r0y, r0z = a00 - smallest, a01, a02
            r1x, r1y, r1z = a01, a11 - smallest, a12
            r2x, r2y, r2z = a02, a12, a22 - smallest
            vx, vy, vz = r0y * r1z - r0z * r1y, r0z * r1x - r0x * r1z, r0x * r1y - r0y * r1x
            best = vx * vx + vy * vy + vz * vz
            cx, cy, cz = r0y * r2z - r0z * r2y, r0z * r2x - r0x * r2z, r0x * r2y - r0y * r2x
            length = cx * cx + cy * cy + cz * cz
            if length > best:
                vx, vy, vz, best = cx, cy, cz, length
            cx, cy, cz = r1y * r2z - r1z * r2y, r1z * r2x - r1x * r2z, r1x * r2y - r1y * r2x
            length = cx * cx + cy * cy + cz * cz
            if length > best:
                vx, vy, vz, best = cx, cy, cz, length
            if not best > 0.0:
                lapack_into(cov, i, out)
                continue
            norm = math.sqrt(best)
            out[i, 0], out[i, 1], out[i, 2] = vx / norm, vy / norm, vz / norm
        return out

    return lapack, closed_form


def smallest_eigenvectors(cov: np.ndarray, solver: str = "lapack") -> np.ndarray:
    """float64[m, 3]: the eigenvector of each symmetric matrix's smallest eigenvalue, by the
    named solver (``lapack``: ``np.linalg.eigh(cov)[1][:, :, 0]`` bit for bit)."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown eigen solver {solver!r}; choose one of: {', '.join(SOLVERS)}")
    lapack, closed_form = _kernels()
    cov = np.ascontiguousarray(cov, np.float64)
    with KERNEL_LOCK:
        return lapack(cov) if solver == "lapack" else closed_form(cov, GAP)
