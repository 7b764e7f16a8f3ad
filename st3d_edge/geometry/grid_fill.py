"""The IDW fill of an organized scan through its pixel grid: :func:`idw_fill`'s values, faster.

A scan seen by a camera is an H x W image, and the sampled points are some of its pixels.
For every valid pixel the nearest sampled pixel in the image (two raster passes that hand
each pixel its neighbours' seeds; :func:`nearest_sampled_pixel`, scipy's exact distance
transform, is the reference) is a *seed*; its candidates are the seed and the seed's first ``candidates``
entries of the kNN graph the pipeline already built. The ``neighbours`` nearest candidates in
3D give the IDW value, under the same weights and the same d == 0 rule as :func:`idw_fill`.

The result is exact, not an approximation: a pixel keeps the candidates' value only when a
triangle-inequality bound proves that no sampled point outside them is nearer (see
``_grid_fill_kernel``); the others (a fraction of a percent on a scan, more at depth edges
and across holes, where the image neighbour is not the 3D one) go through :func:`idw_fill`.
So the fill equals :func:`idw_fill` up to ties at equal distance and float rounding.

The kernel needs numba; without it (the ``runtime`` extra has it) the fill is :func:`idw_fill`
itself, the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from st3d_edge.geometry._checks import as_cloud
from st3d_edge.geometry.fill import idw_fill

# Seed plus 15 kNN entries: on an 800 x 800 scan (64000 of 613k points) 99.9 % of pixels are
# certified; 12 certified 97 %, and every extra candidate costs every pixel.
FILL_CANDIDATES = 16


@dataclass(frozen=True)
class PixelGrid:
    """Where an organized scan's points lie in its image, and the sample's kNN graph.

    ``shape``: the image's (H, W); ``pixels``: int[q, 2] (row, column) of every query point;
    ``sample_idx``: int[m], the sampled points' rows of the queries; ``knn``: int[m, k], the
    sampled points' exact kNN graph (indices into the sample, the point itself in column 0,
    ordered by distance, as :func:`st3d_edge.geometry.knn.knn_indices` returns it; the
    certificate relies on every row holding its point's true nearest).
    """

    shape: tuple[int, int]
    pixels: np.ndarray
    sample_idx: np.ndarray
    knn: np.ndarray


def nearest_sampled_pixel(shape: tuple[int, int], sampled_pixels: np.ndarray) -> np.ndarray:
    """int32[H, W]: for every pixel of the image, the nearest of ``sampled_pixels`` (its row)."""
    from scipy.ndimage import distance_transform_edt

    owner = _owner_image(shape, sampled_pixels)
    # the transform's zeros are the sampled pixels; it returns the nearest zero of each pixel
    rows, cols = distance_transform_edt(owner < 0, return_distances=False, return_indices=True)
    return owner[rows, cols]


def propagated_seeds(shape: tuple[int, int], sampled_pixels: np.ndarray) -> np.ndarray:
    """int32[H, W]: for every pixel a near sampled pixel (its row), by two raster passes in numba
    (``_grid_fill_kernel.propagate_seeds``): nearly always the nearest that
    :func:`nearest_sampled_pixel` finds, in half its time (single-threaded both)."""
    from st3d_edge.geometry._grid_fill_kernel import propagate_seeds

    pixels = np.asarray(sampled_pixels, dtype=np.int64)
    owner = _owner_image(shape, pixels)
    return propagate_seeds(owner, np.ascontiguousarray(pixels[:, 0]), np.ascontiguousarray(pixels[:, 1]))


def _owner_image(shape: tuple[int, int], sampled_pixels: np.ndarray) -> np.ndarray:
    """int32[H, W]: each sampled pixel's row of the sample, -1 elsewhere."""
    owner = np.full(shape, -1, dtype=np.int32)
    owner[sampled_pixels[:, 0], sampled_pixels[:, 1]] = np.arange(len(sampled_pixels), dtype=np.int32)
    return owner


def _kernel():
    try:
        from st3d_edge.geometry._grid_fill_kernel import fill_from_candidates
    except ImportError:
        return None
    return fill_from_candidates


def grid_idw_fill(
    sample_points,
    sample_scores,
    query_points,
    grid: PixelGrid,
    neighbours: int = 4,
    power: float = 2.0,
    candidates: int = FILL_CANDIDATES,
) -> np.ndarray:
    """float32[q] scores at ``query_points``, the values of :func:`idw_fill` (see the module)."""
    samples = as_cloud(sample_points, "sample_points")
    queries = as_cloud(query_points, "query_points")
    scores = np.asarray(sample_scores, dtype=np.float64)
    pixels = np.asarray(grid.pixels)
    sample_idx = np.asarray(grid.sample_idx)
    knn = np.asarray(grid.knn)
    if pixels.shape != (len(queries), 2):
        raise ValueError(f"grid.pixels must have shape ({len(queries)}, 2), got {pixels.shape}")
    if sample_idx.shape != (len(samples),) or knn.ndim != 2 or len(knn) != len(samples):
        raise ValueError("grid.sample_idx and grid.knn must have one row per sampled point")
    kernel = _kernel()
    candidates = min(candidates, knn.shape[1])
    if kernel is None or len(queries) == 0 or candidates < neighbours:
        # fewer candidates than neighbours can never be certified: the kd-tree does it all
        return idw_fill(samples, scores, queries, neighbours, power)
    if scores.shape != (len(samples),):
        raise ValueError(f"sample_scores must have shape ({len(samples)},), got {scores.shape}")
    # any near seed will do: the certificate below checks each pixel's candidates
    seed_image = propagated_seeds(grid.shape, pixels[sample_idx])
    rows = np.ascontiguousarray(knn[:, :candidates], dtype=np.int32)  # only what the kernel reads
    filled = np.empty(len(queries), dtype=np.float64)
    certain = np.empty(len(queries), dtype=np.bool_)
    from st3d_edge.numba_support import KERNEL_LOCK

    with KERNEL_LOCK:
        kernel(queries, pixels, seed_image, samples, scores, rows, neighbours, float(power), filled, certain)
    unsure = np.flatnonzero(~certain)
    if len(unsure):
        filled[unsure] = idw_fill(samples, scores, queries[unsure], neighbours, power)
    return filled.astype(np.float32)
