"""Harmonic interpolation of sparse pixel scores onto the whole image (paper section 4.1).

The paper scores n sampled points and fills every other pixel of the H x W image by
harmonic interpolation. It leaves the discretisation open; we fix it as:

* The image grid is a graph with 4-neighbour edges. Unknown pixels satisfy the discrete
  Laplace equation ``sum over neighbours (u_j - u_i) = 0``; known pixels are fixed
  (Dirichlet). At the image border a pixel simply has fewer neighbours, which is the
  natural (zero normal derivative, Neumann) boundary condition. Consequences: a constant
  map stays constant, and a linear ramp is reproduced exactly when the known pixels
  include the two borders that the ramp crosses (elsewhere the border pins the slope to 0).
* The grid is connected, so every group of unknown pixels borders a known pixel unless no
  pixel is known at all; then there is no unique solution and the map is all 0.
* The sparse system is symmetric positive definite. It is solved with classical (Ruge-Stuben)
  algebraic multigrid from pyamg (direct interpolation, a forward Gauss-Seidel sweep before
  and a backward one after, so the V-cycle stays symmetric) as a CG preconditioner, started
  from the nearest-known-pixel fill. :func:`harmonic_fill` solves in float32 to a relative
  residual of 1e-6: on an 800 x 800 map with 64000 known pixels about 1.2 s of one core,
  agreeing with the exact solution to ~1e-4 of the value range, far below what changes the
  ranking of an anomaly map. :func:`harmonic_fill64` solves in float64 to 1e-10 (what the
  tests compare with a dense solve). Smoothed aggregation converges as fast but spends most
  of its setup estimating spectral radii; plain aggregation sets up fast but needs ~50
  iterations when large regions (the background of a scan) hold no known pixel.
  Without pyamg a direct sparse solve (SuperLU) gives the exact solution, only slower.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, sparse


def harmonic_fill(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the pixels where ``known`` is False; known pixels keep their values. float32[H, W]."""
    return _fill(values, known, tol=1e-6, dtype=np.float32).astype(np.float32)


def harmonic_fill64(values: np.ndarray, known: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """:func:`harmonic_fill` solved in float64 to a tight tolerance; float64[H, W]."""
    return _fill(values, known, tol=tol, dtype=np.float64)


def _fill(values: np.ndarray, known: np.ndarray, tol: float, dtype: type) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    known = np.asarray(known, dtype=bool)
    if values.shape != known.shape or values.ndim != 2:
        raise ValueError(f"values {values.shape} and known {known.shape} must be the same 2-D shape")
    out = np.where(known, values, 0.0)
    if not known.any():
        return out
    if known.all():
        return out

    unknown = ~known
    matrix, rhs = _laplace_system(out, known, unknown)
    x0 = _nearest_known(out, known)[unknown]
    out[unknown] = _solve_spd(matrix, rhs, x0, tol, dtype)
    return out


def _laplace_system(values: np.ndarray, known: np.ndarray, unknown: np.ndarray):
    """Rows of the graph Laplacian for the unknown pixels, known neighbours moved to the right side."""
    h, w = known.shape
    index = np.full((h, w), -1, dtype=np.int64)
    count = int(unknown.sum())
    index[unknown] = np.arange(count)

    degree = np.zeros((h, w), dtype=np.float64)
    rhs = np.zeros((h, w), dtype=np.float64)
    rows, cols = [], []
    # Each of the 4 directions as (slice of pixels, slice of their neighbours in that direction).
    for a, b in _neighbour_slices(h, w):
        degree[a] += 1.0
        nb_known = known[b]
        rhs[a] += np.where(nb_known, values[b], 0.0)
        both = unknown[a] & unknown[b]
        rows.append(index[a][both])
        cols.append(index[b][both])
    rows = np.concatenate(rows)
    cols = np.concatenate(cols)
    diag = np.arange(count)
    matrix = sparse.csr_matrix(
        (
            np.concatenate([degree[unknown], -np.ones(len(rows))]),
            (np.concatenate([diag, rows]), np.concatenate([diag, cols])),
        ),
        shape=(count, count),
    )
    return matrix, rhs[unknown]


def _neighbour_slices(h: int, w: int):
    full = slice(None)
    yield (slice(0, h - 1), full), (slice(1, h), full)  # neighbour below
    yield (slice(1, h), full), (slice(0, h - 1), full)  # above
    yield (full, slice(0, w - 1)), (full, slice(1, w))  # right
    yield (full, slice(1, w)), (full, slice(0, w - 1))  # left


def _nearest_known(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    _, (ri, ci) = ndimage.distance_transform_edt(~known, return_indices=True)
    return values[ri, ci]


def _solve_spd(
    matrix: sparse.csr_matrix, rhs: np.ndarray, x0: np.ndarray, tol: float, dtype: type
) -> np.ndarray:
    try:
        import pyamg
    except ImportError:
        from scipy.sparse.linalg import spsolve

        return spsolve(matrix.tocsc(), rhs)
    solver = pyamg.ruge_stuben_solver(
        matrix.astype(dtype),
        interpolation="direct",
        presmoother=("gauss_seidel", {"sweep": "forward"}),
        postsmoother=("gauss_seidel", {"sweep": "backward"}),
        max_coarse=500,
        coarse_solver="splu",
    )
    x = solver.solve(rhs.astype(dtype), x0=x0.astype(dtype), tol=tol, accel="cg", maxiter=500)
    return x.astype(np.float64)
