"""Samplers by name, and the covering radius used to compare them.

The sampler's name is recorded in configs and in the export manifest, so the training side
and the edge reduce clouds alike. Names: ``fps`` (exact FPS from the first point, the default:
the uniform-grid FPS of :mod:`st3d_edge.geometry.grid_fps` with numba, fpsample's bucket FPS
without it, which is exact FPS from a point of its own choosing), ``fps-exact`` (the numpy
reference), ``fps-split`` (exact FPS of the cloud's two halves on two cores, merged by pick
distance, :mod:`st3d_edge.geometry.split_fps`: faster on a CPU, opt-in; without numba, and on
the GPU, it is ``fps``), ``fps-tiled`` (per-tile FPS with a global second pass, designed for
the GPU; see :mod:`st3d_edge.geometry.tiles`).
"""

from __future__ import annotations

import numpy as np

from st3d_edge.geometry._checks import as_cloud

SAMPLERS = ("fps", "fps-exact", "fps-split", "fps-tiled")


def sample_indices(points, n: int, sampler: str = "fps") -> np.ndarray:
    """``min(n, N)`` point indices (int64) chosen by the named sampler, listed in locality order
    (:mod:`st3d_edge.geometry.locality`: neighbours near in memory, for the stages that walk
    neighbour lists) rather than in the order the sampler picked them."""
    from st3d_edge.geometry.locality import locality_order

    idx = sampled_in_pick_order(points, n, sampler)
    return idx[locality_order(np.asarray(points)[idx])]


def sampled_in_pick_order(points, n: int, sampler: str = "fps") -> np.ndarray:
    """The named sampler's indices in the order it picked them (FPS: each the farthest so far)."""
    from st3d_edge.geometry.fps import fps_bucket, fps_exact
    from st3d_edge.geometry.grid_fps import fps_grid
    from st3d_edge.geometry.split_fps import fps_split
    from st3d_edge.geometry.tiles import fps_tiled

    samplers = {
        "fps-grid": fps_grid,
        "fps-bucket": fps_bucket,
        "fps-exact": fps_exact,
        "fps-split": fps_split,
        "fps-tiled": fps_tiled,
    }
    return samplers[implementation(sampler)](points, n)


def implementation(sampler: str) -> str:
    """What runs for a sampler name here: ``fps`` is ``fps-grid`` with numba, ``fps-bucket``
    without (both exact FPS, from different first points), and so is ``fps-split`` without
    numba; the others are themselves. Caches of sampled clouds key on this, so that they never
    mix the two."""
    from st3d_edge.numba_support import numba_available

    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}")
    if sampler == "fps":
        return "fps-grid" if numba_available() else "fps-bucket"
    if sampler == "fps-split" and not numba_available():
        return "fps-bucket"
    return sampler


def covering_radius(points, idx) -> float:
    """The largest distance from any point to its nearest sampled point (0 for no points)."""
    from scipy.spatial import cKDTree

    cloud = as_cloud(points)
    idx = np.asarray(idx, dtype=np.int64)
    if len(cloud) == 0:
        return 0.0
    if len(idx) == 0:
        return float("inf")
    return float(cKDTree(cloud[idx]).query(cloud, workers=-1)[0].max())
