"""The geometry stages of the edge pipeline behind one small interface, so they can run on the GPU.

A geometry backend turns the scan's valid points into the network's inputs and the network's
per-point scores back into a score for every valid pixel:

==============================================  ==============================================
``to_device(host_array) -> array``               upload once per scan (identity on the CPU)
``sample(points, n, sampler) -> idx int64[m]``   reduce the cloud to m = min(n, N) points
``take(points, idx) -> float32[m, 3]``           the sampled points
``knn(points, k) -> int32[m, k]``                the kNN graph, the point itself in column 0
``knn_and_nearest(points, k, count)`` (optional) the same and the geometric score's wider lists
``fill(sample_points, scores, query_points)``    inverse-distance fill to every valid pixel
``fill_grid(..., grid)`` (optional)              the same fill through an organized scan's image
``image_score(points, scores, knn, neighbours)`` the image score (a host float)
``to_host(array) -> np.ndarray``                 download (identity on the CPU)
``synchronize()``                                wait for queued device work (timing only)
==============================================  ==============================================

:class:`CpuGeometry` implements it with numpy/scipy (st3d_edge.geometry). The CUDA version,
``st3d_edge.runtime.cuda.CudaGeometry``, takes and returns device arrays, so the points, the
indices, the scores and the map stay on the GPU from upload to the final download; only the
three methods of the architecture contract (``sample``, ``knn``, ``fill``) are required of it,
the rest fall back to host code through :func:`call` when it does not define them, and
``fill_grid`` (same values as ``fill``, see :mod:`st3d_edge.geometry.grid_fill`) to ``fill``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from st3d_edge.errors import MissingExtraError, St3dError, gpu_extra
from st3d_edge.geometry.grid_fill import PixelGrid
from st3d_edge.geometry.smoothing import IMAGE_SCORE_NEIGHBOURS

GEOMETRY_CHOICES = ("auto", "cpu", "cuda")

# Inverse-distance fill: the 4 nearest sampled points, weights 1 / distance^2 (the runtime's
# documented choice; harmonic interpolation stays the evaluation's).
FILL_NEIGHBOURS = 4
FILL_POWER = 2.0


class CpuGeometry:
    """numpy/scipy geometry: fpsample's FPS (or the bundle's sampler), kd-tree kNN, IDW fill
    (through the image of an organized scan, by a kd-tree for an unorganized one)."""

    name = "cpu"
    on_device = False

    def __init__(self, workers: int = -1) -> None:
        # cKDTree query threads (-1 = all cores); pykdtree and the numba fill size their own
        # pools (OMP_NUM_THREADS, NUMBA_NUM_THREADS)
        self.workers = workers

    def to_device(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array)

    def to_host(self, array: Any) -> np.ndarray:
        return np.asarray(array)

    def synchronize(self) -> None:
        return None

    def sample(self, points: np.ndarray, n: int, sampler: str = "fps") -> np.ndarray:
        from st3d_edge.geometry.sampling import sample_indices

        return sample_indices(points, n, sampler=sampler)

    def take(self, points: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(points[idx], dtype=np.float32)

    def knn(self, points: np.ndarray, k: int) -> np.ndarray:
        from st3d_edge.geometry.knn import knn_indices

        return knn_indices(points, k, workers=self.workers)

    def knn_and_nearest(
        self, points: np.ndarray, k: int, count: int
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """:meth:`knn` and each point's ``count`` nearest for the geometric score, one query."""
        from st3d_edge.geometry.knn import knn_and_nearest

        return knn_and_nearest(points, k, count, workers=self.workers)

    def fill(self, sample_points: np.ndarray, scores: np.ndarray, query_points: np.ndarray) -> np.ndarray:
        from st3d_edge.geometry.fill import idw_fill

        return idw_fill(
            sample_points,
            np.asarray(scores, dtype=np.float32),
            query_points,
            neighbours=FILL_NEIGHBOURS,
            power=FILL_POWER,
        )

    def fill_grid(
        self, sample_points: np.ndarray, scores: np.ndarray, query_points: np.ndarray, grid: PixelGrid
    ) -> np.ndarray:
        """:meth:`fill`'s values for an organized scan, found through its pixel grid."""
        from st3d_edge.geometry.grid_fill import grid_idw_fill

        return grid_idw_fill(
            sample_points,
            np.asarray(scores, dtype=np.float32),
            query_points,
            grid,
            neighbours=FILL_NEIGHBOURS,
            power=FILL_POWER,
        )

    def image_score(
        self,
        points: np.ndarray,
        scores: np.ndarray,
        knn: np.ndarray,
        neighbours: int = IMAGE_SCORE_NEIGHBOURS,
    ) -> float:
        return _host_image_score(points, scores, knn, neighbours)


def _host_image_score(points: Any, scores: Any, knn: Any, neighbours: int = IMAGE_SCORE_NEIGHBOURS) -> float:
    """Max over points of the mean score of each point's first ``neighbours`` kNN entries."""
    from st3d_edge.geometry.smoothing import image_score

    return float(
        image_score(
            to_host_array(points),
            to_host_array(scores),
            to_host_array(knn),
            neighbours=neighbours,
        )
    )


def to_host_array(array: Any) -> np.ndarray:
    """A numpy array from a numpy array or any device array with ``copy_to_host`` (numba.cuda)."""
    if hasattr(array, "copy_to_host"):
        return array.copy_to_host()
    return np.asarray(array)


def is_device_array(array: Any) -> bool:
    return hasattr(array, "__cuda_array_interface__") and not isinstance(array, np.ndarray)


def _fallback_take(points: Any, idx: Any) -> np.ndarray:
    return np.ascontiguousarray(to_host_array(points)[to_host_array(idx)], dtype=np.float32)


_FALLBACKS = {
    "to_device": lambda array: array,
    "to_host": to_host_array,
    "synchronize": lambda: None,
    "take": _fallback_take,
    "image_score": _host_image_score,
}


def call(geometry: Any, method: str, *args: Any) -> Any:
    """``geometry.method(*args)``, or the host fallback when a backend leaves that method out."""
    fn = getattr(geometry, method, None)
    if fn is None:
        fn = _FALLBACKS[method]
    return fn(*args)


def fill_scan(geometry: Any, scan: Any, sampled: Any, scores: Any, cloud: Any, idx: Any, knn: Any) -> Any:
    """Every valid point's score: through the pixel grid when the scan is organized and the
    backend has ``fill_grid`` (the same values, faster), by ``fill`` otherwise."""
    fill_grid = getattr(geometry, "fill_grid", None)
    if fill_grid is None or getattr(scan, "pixels", None) is None:
        return geometry.fill(sampled, scores, cloud)
    grid = PixelGrid(tuple(scan.valid.shape), np.asarray(scan.pixels), to_host_array(idx), to_host_array(knn))
    return fill_grid(sampled, scores, cloud, grid)


def cuda_geometry_available() -> bool:
    """True when numba.cuda sees a real GPU (the simulator does not count for ``auto``)."""
    import os

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:
        return False


def select_geometry(choice: str = "auto") -> Any:
    """``cpu``, ``cuda`` (numba.cuda kernels; needs the gpu extra and a GPU) or ``auto``.

    ``auto`` takes the CUDA geometry only when a real GPU is visible and
    ``st3d_edge.runtime.cuda`` imports, and otherwise the CPU one.
    """
    if choice not in GEOMETRY_CHOICES:
        raise St3dError(f"unknown geometry {choice!r}; choose one of: {', '.join(GEOMETRY_CHOICES)}")
    if choice == "cpu":
        return CpuGeometry()
    if choice == "auto" and not cuda_geometry_available():
        return CpuGeometry()
    try:
        import numba.cuda  # noqa: F401
    except ImportError:
        raise MissingExtraError("numba-cuda", gpu_extra(), "needed for --geometry cuda") from None
    if not cuda_geometry_available() and choice == "cuda":
        import os

        if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
            # numba-cuda is installed (checked above): no extra to install, the GPU is missing.
            raise St3dError("--geometry cuda: numba.cuda sees no CUDA GPU; use --geometry cpu")
    try:
        from st3d_edge.runtime.cuda import CudaGeometry
    except ImportError as exc:
        if choice == "auto":
            return CpuGeometry()
        raise MissingExtraError("st3d_edge.runtime.cuda", gpu_extra(), f"cannot import it: {exc}") from None
    return CudaGeometry()
