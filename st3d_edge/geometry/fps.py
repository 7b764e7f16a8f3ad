"""Farthest point sampling: the exact numpy reference and fpsample's bucket FPS (the ``fps``
sampler without numba; with it, :mod:`st3d_edge.geometry.grid_fps`).

Decisions the paper leaves open
-------------------------------
* When the cloud has no more points than asked for (``n >= N``), every sampler returns
  ``arange(N)``: all points, in their original order. Every sampler agrees on this, so a small
  scan is fed to the network identically on the train side and on the edge.
* Ties (equal distances) go to the lowest index in :func:`fps_exact` (``np.argmax``), and a
  point already chosen is never chosen again. That matters once duplicates make every
  remaining distance zero: the rest of the sample is then the unchosen points in index order.
  fpsample repeats an index in that situation; :func:`distinct_completion` replaces the
  repeats by exactly what the reference picks, so the fast sampler agrees there too.
* :func:`fps_exact` measures distances in float64 so it is a clean reference; fpsample works in
  float32, so the two can differ where two candidates are within float32 rounding of each other.
"""

from __future__ import annotations

import math

import numpy as np

from st3d_edge.errors import MissingExtraError
from st3d_edge.geometry._checks import as_cloud, as_count

# QuickFPS buckets of 2**h points; its authors suggest h = 3 for small and h = 9 for large
# workloads. For 64000 samples 8 measured fastest or within noise of it from 150000 to 613000
# points (an 800 x 800 scan: 1.2-1.5x faster than 7), 9 at 1.2 million (benchmarks/geometry.py).
# The height changes which point fpsample starts from (see fps_bucket), not the FPS after it.
BUCKET_HEIGHT = 8


def import_fpsample():
    try:
        import fpsample
    except ImportError:
        raise MissingExtraError("fpsample", "runtime", "fast farthest point sampling") from None
    return fpsample


def trivial_sample(n_points: int, n: int) -> np.ndarray | None:
    """The answer when no sampling is needed: all points (n >= N), or none (n == 0)."""
    if n >= n_points:
        return np.arange(n_points, dtype=np.int64)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    return None


def checked_request(points, n: int, start: int) -> tuple[np.ndarray, int, np.ndarray | None]:
    """(the cloud as float32 (N, 3), n, the whole answer or None) for an FPS from ``start``;
    the answer is known without sampling when n >= N or n == 0 (:func:`trivial_sample`)."""
    cloud = as_cloud(points)
    n = as_count(n)
    done = trivial_sample(len(cloud), n)
    if done is None and not 0 <= start < len(cloud):
        raise ValueError(f"start must be in [0, {len(cloud)}), got {start}")
    return cloud, n, done


def fps_exact(points, n: int, start: int = 0) -> np.ndarray:
    """Exact FPS, O(N n): the obvious loop, kept as the reference for every faster sampler.

    Returns ``min(n, N)`` indices (int64); the first is ``start``.
    """
    cloud, n, done = checked_request(points, n, start)
    if done is not None:
        return done
    cloud = cloud.astype(np.float64)
    chosen = np.empty(n, dtype=np.int64)
    chosen[0] = start
    nearest = np.full(len(cloud), np.inf)
    for i in range(1, n):
        step = cloud - cloud[chosen[i - 1]]
        np.minimum(nearest, np.einsum("ij,ij->i", step, step), out=nearest)
        nearest[chosen[i - 1]] = -np.inf
        chosen[i] = int(np.argmax(nearest))
    return chosen


def distinct_completion(picked, n_points: int) -> np.ndarray:
    """``picked`` with repeated indices replaced by the lowest unchosen indices, in order.

    fpsample repeats indices once every remaining distance is zero (duplicate points); from
    that step on exact FPS takes the unchosen points in index order, which this reproduces.
    """
    picked = np.asarray(picked, dtype=np.int64)
    first = np.zeros(len(picked), dtype=bool)
    first[np.unique(picked, return_index=True)[1]] = True
    if first.all():
        return picked
    repeats = int((~first).sum())
    unchosen = np.ones(n_points, dtype=bool)
    unchosen[picked] = False
    return np.concatenate([picked[first], np.flatnonzero(unchosen)[:repeats]])


def fps_bucket(points, n: int, start: int = 0) -> np.ndarray:
    """FPS by fpsample's bucket kd-tree ("QuickFPS"); the sampler ``fps`` where numba is missing.

    It is exact FPS (tested against :func:`fps_exact`: the same sequence from the same first
    point, up to float32 near-ties), only faster. One caveat, measured with fpsample 1.0.2:
    the library reorders the points while building its tree and then reads ``start`` as a
    position in that internal order, so the first sample is a deterministic point of the cloud
    but not ``points[start]``. ``start`` is passed through so the result is reproducible.
    fpsample 0.3.3 (the lowest version allowed, and the newest with wheels for x86_64 and
    aarch64) returned the same 64000 indices as 1.0.2 on a 300000-point cloud.
    """
    fpsample = import_fpsample()
    cloud, n, done = checked_request(points, n, start)
    if done is not None:
        return done
    # the library insists on 2**h <= N
    height = max(1, min(BUCKET_HEIGHT, int(math.log2(len(cloud)))))
    picked = fpsample.bucket_fps_kdline_sampling(cloud, n, height, start_idx=int(start))
    return distinct_completion(picked, len(cloud))
