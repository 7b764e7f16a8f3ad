"""CudaGeometry: the edge pipeline's geometry stages on the GPU, device-resident from scan to map.

The same methods as ``st3d_edge.runtime.geometry_backend.CpuGeometry``, on numba device arrays:

``to_device``  upload a host array once per scan into a reused buffer
``sample``     FPS indices (``fps`` / ``fps-exact`` / ``fps-split``: exact FPS in one launch;
               ``fps-tiled``: the host tile plan, every tile sampled by one block, all in one
               launch)
``take``       the sampled points, gathered on the device
``knn``        the kNN graph (self first), int32 or int64 for a graph that wants int64
``fill``       the inverse-distance fill of the scores to every valid pixel
``image_score`` the image score (the only method that returns a host value)
``to_host``    download (synchronizes)

Residency and buffers. Every kernel is queued on one CUDA stream and nothing waits for the
device until ``to_host``/``image_score``/``synchronize``: one synchronization per scan (the map
download) plus the image score's. Each output lives in a named buffer that is allocated for the
largest scan seen so far and reused (grown on demand), so a stream of scans allocates nothing
after the first large one. A returned array is therefore a *view* that the next call of the same
method overwrites; copy it (``to_host``) if it must outlive the scan.

Inputs may be numpy arrays (uploaded), numba device arrays, or any object with
``__cuda_array_interface__`` (an onnxruntime or CuPy output, wrapped without a copy).
:func:`device_pointer` gives the raw address for onnxruntime's IOBinding or TensorRT's
``set_tensor_address``.

Decisions:

- ``fps`` is exact FPS from point 0, as on the CPU with numba (``grid_fps``; without numba the
  CPU's bucket FPS starts from a point of fpsample's choosing). ``fps-exact`` is identical to
  ``st3d_edge.geometry.fps.fps_exact`` up to float32 near-ties (the kernels measure in float32,
  the reference in float64). ``fps-split`` (the CPU's two halves on two cores, an
  approximation of exact FPS for a CPU's sake) is exact FPS here, as the GPU has no core
  waiting.
- ``n >= N`` returns ``arange(N)``, as every CPU sampler does in pick order (the CPU lists its
  samples in locality order afterwards; the GPU keeps pick order: no score depends on it).
- ``fps-tiled`` needs the points on the host for the tile plan; ``to_device`` remembers the
  host copy of what it uploaded, otherwise the points are downloaded once (an extra sync).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from st3d_edge.errors import MissingExtraError, St3dError, gpu_extra
from st3d_edge.geometry.sampling import SAMPLERS
from st3d_edge.geometry.smoothing import IMAGE_SCORE_NEIGHBOURS
from st3d_edge.runtime.cuda.fps_kernels import (
    check_block_size,
    fps_segments_kernel,
    gather_soa_kernel,
    map_positions_kernel,
    scatter_kernel,
)
from st3d_edge.runtime.geometry_backend import FILL_NEIGHBOURS, FILL_POWER

UPLOAD_SLOTS = 4  # unnamed uploads of one dtype rotate over this many reused buffers


def _cuda():
    try:
        from numba import cuda
    except ImportError:
        raise MissingExtraError("numba-cuda", gpu_extra(), "needed for the CUDA geometry") from None
    return cuda


def device_pointer(array: Any) -> int:
    """The device address of a device array, for onnxruntime IOBinding / TensorRT tensor addresses."""
    interface = getattr(array, "__cuda_array_interface__", None)
    if interface is None:
        raise TypeError(f"{type(array).__name__} is not a device array (no __cuda_array_interface__)")
    return int(interface["data"][0])


def _blocks(items: int, threads: int) -> int:
    return max(1, (items + threads - 1) // threads)


class CudaGeometry:
    """numba.cuda geometry; see the module docstring for residency and buffer reuse."""

    name = "cuda"
    on_device = True

    def __init__(self, threads: int = 128, fps_threads: int = 512, tile_points: int | None = None) -> None:
        self.cuda = _cuda()
        self.threads = int(threads)  # kNN, fill and the small gather kernels
        self.fps_threads = check_block_size(fps_threads)
        self.tile_points = tile_points  # None: the tile plan's default
        self.stream = self.cuda.stream()
        self._buffers: dict[str, Any] = {}
        self._host_copies: dict[str, tuple[Any, np.ndarray]] = {}
        self._upload_turns: dict[str, int] = {}

    # ---- buffers -------------------------------------------------------------------------

    def buffer(self, name: str, shape: tuple[int, ...], dtype) -> Any:
        """A device array of ``shape`` in the reused buffer ``name`` (grown when too small)."""
        dtype = np.dtype(dtype)
        size = int(np.prod(shape))
        held = self._buffers.get(name)
        if held is None or held.dtype != dtype or held.size < size:
            held = self.cuda.device_array(max(size, 1), dtype=dtype, stream=self.stream)
            self._buffers[name] = held
        return held[:size].reshape(shape)

    def to_device(self, array: Any, name: str | None = None) -> Any:
        """Upload a host array into the buffer ``name``.

        Without a name, uploads of one dtype take turns over :data:`UPLOAD_SLOTS` buffers, so an
        upload stays valid until that many more uploads of its dtype (the pipeline makes one
        per scan; the stages' own implicit uploads use buffers named after their role).
        """
        if not isinstance(array, np.ndarray):
            return self._as_device(array, role="any")
        host = np.ascontiguousarray(array)
        if name is None:
            turn = self._upload_turns.get(host.dtype.str, 0)
            self._upload_turns[host.dtype.str] = turn + 1
            name = f"upload-{host.dtype}-{turn % UPLOAD_SLOTS}"
        dev = self.buffer(name, host.shape, host.dtype)
        dev.copy_to_device(host, stream=self.stream)
        self._host_copies[name] = (dev, host)  # one per buffer, so nothing stale piles up
        return dev

    def _as_device(self, array: Any, role: str, dtype=None) -> Any:
        """A device view of ``array``; a host array is uploaded into the buffer ``input-<role>``."""
        if isinstance(array, np.ndarray):
            if dtype is not None:
                array = array.astype(dtype, copy=False)
            return self.to_device(array, name=f"input-{role}")
        if hasattr(array, "copy_to_host"):
            return array  # already a numba device array
        if hasattr(array, "__cuda_array_interface__"):
            return self.cuda.as_cuda_array(array)  # e.g. an onnxruntime or CuPy output, no copy
        raise TypeError(f"expected a numpy or device array, got {type(array).__name__}")

    def to_host(self, array: Any) -> np.ndarray:
        if isinstance(array, np.ndarray):
            return array  # a host backend's output (onnxruntime CPU, the numba CPU scorer)
        if not hasattr(array, "copy_to_host"):
            array = self._as_device(array, "download")  # another library's device array
        host = array.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return host

    def synchronize(self) -> None:
        self.stream.synchronize()

    def _host_points(self, points: Any) -> np.ndarray:
        for dev, host in self._host_copies.values():
            if dev is points:
                return host
        return self.to_host(points)

    # ---- stages --------------------------------------------------------------------------

    def sample(self, points: Any, n: int, sampler: str = "fps") -> Any:
        """FPS indices (int64, device) of ``min(n, N)`` points; see the module docstring."""
        if sampler not in SAMPLERS:
            raise St3dError(f"unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}")
        points = self._as_device(points, "sample-points", np.float32)
        total = int(points.shape[0])
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n >= total:
            return self._arange(total)
        if sampler == "fps-tiled":
            return self._sample_tiled(points, n)
        return self._sample_exact(points, n)

    def _arange(self, total: int) -> Any:
        out = self.buffer("sample-idx", (total,), np.int64)
        out.copy_to_device(np.arange(total, dtype=np.int64), stream=self.stream)
        return out

    def _segment_table(self, name: str, rows) -> Any:
        table = np.ascontiguousarray(np.asarray(rows, dtype=np.int32).reshape(-1, 5).T)
        dev = self.buffer(name, table.shape, np.int32)
        dev.copy_to_device(table, stream=self.stream)
        return dev

    def _run_fps(self, soa: Any, table: Any, resume: int, min_dist: Any, positions: Any) -> None:
        kernel = fps_segments_kernel()
        kernel[int(table.shape[1]), self.fps_threads, self.stream](soa, table, resume, min_dist, positions)

    def _soa(self, name: str, points: Any, order: Any) -> Any:
        total = int(points.shape[0])
        soa = self.buffer(name, (3, total), np.float32)
        gather_soa_kernel()[_blocks(total, self.threads), self.threads, self.stream](points, order, soa)
        return soa

    def _finish(self, order: Any, positions: Any, mapped: int) -> Any:
        n = int(positions.shape[0])
        out = self.buffer("sample-idx", (n,), np.int64)
        kernel = map_positions_kernel()
        kernel[_blocks(n, self.threads), self.threads, self.stream](order, positions, mapped, out)
        return out

    def _sample_exact(self, points: Any, n: int) -> Any:
        total = int(points.shape[0])
        identity = self.buffer("fps-no-order", (0,), np.int64)
        soa = self._soa("fps-soa", points, identity)
        min_dist = self.buffer("fps-min-dist", (total,), np.float32)
        positions = self.buffer("fps-positions", (n,), np.int32)
        self._run_fps(soa, self._segment_table("fps-segments", [(0, total, n, 0, 0)]), 0, min_dist, positions)
        return self._finish(identity, positions, 0)

    def _sample_tiled(self, points: Any, n: int) -> Any:
        """Tiles in one launch, then the global second pass (one block) from their distances."""
        from st3d_edge.runtime.cuda.tiled_plan import segments_for

        total = int(points.shape[0])
        order, segments, extra = segments_for(self._host_points(points), n, self.tile_points)
        order_dev = self.buffer("fps-order", order.shape, np.int64)
        order_dev.copy_to_device(order, stream=self.stream)
        soa = self._soa("fps-soa", points, order_dev)
        min_dist = self.buffer("fps-min-dist", (total,), np.float32)
        positions = self.buffer("fps-positions", (n,), np.int32)
        self._run_fps(soa, self._segment_table("fps-segments", segments), 0, min_dist, positions)
        if extra > 0:
            # The second pass runs in the scan's own order, so its ties go to the lowest index
            # as in the CPU sampler: distances and points are scattered back first.
            by_index = self.buffer("fps-min-dist-by-index", (total,), np.float32)
            scatter_kernel()[_blocks(total, self.threads), self.threads, self.stream](
                order_dev, min_dist, by_index
            )
            soa_by_index = self._soa("fps-soa-by-index", points, self.buffer("fps-no-order", (0,), np.int64))
            table = self._segment_table("fps-topup", [(0, total, extra, n - extra, 0)])
            self._run_fps(soa_by_index, table, 1, by_index, positions)
        return self._finish(order_dev, positions, n - extra)

    def take(self, points: Any, idx: Any) -> Any:
        """``points[idx]`` on the device, float32 ``(m, 3)``."""
        from st3d_edge.runtime.cuda.small_kernels import take_rows_kernel

        points = self._as_device(points, "take-points", np.float32)
        idx = self._as_device(idx, "take-idx", np.int64)
        out = self.buffer("take", (int(idx.shape[0]), 3), np.float32)
        take_rows_kernel()[_blocks(out.shape[0], self.threads), self.threads, self.stream](points, idx, out)
        return out

    def knn(self, points: Any, k: int, dtype=np.int32) -> Any:
        """The kNN graph ``(n, k)`` with each point itself in column 0 (int32, or int64 on request)."""
        from st3d_edge.runtime.cuda.knn_kernels import MAX_K, knn_kernel

        points = self._as_device(points, "knn-points", np.float32)
        total = int(points.shape[0])
        k = int(k)
        if not 1 <= k <= MAX_K:
            raise ValueError(f"k must be in 1..{MAX_K} on the GPU, got {k}")
        if k > total:
            raise St3dError(f"the cloud has {total} points, fewer than k = {k} neighbours")
        out = self.buffer(f"knn-{np.dtype(dtype)}", (total, k), dtype)
        knn_kernel()[_blocks(total, self.threads), self.threads, self.stream](points, k, out)
        return out

    def fill(
        self,
        sample_points: Any,
        scores: Any,
        query_points: Any,
        neighbours: int = FILL_NEIGHBOURS,
        power: float = FILL_POWER,
    ) -> Any:
        """float32 score of every query point from its nearest sampled points (1 / d**power)."""
        from st3d_edge.runtime.cuda.fill_kernels import MAX_NEIGHBOURS, fill_kernel

        samples = self._as_device(sample_points, "fill-samples", np.float32)
        scores = self._as_device(scores, "fill-scores", np.float32)
        queries = self._as_device(query_points, "fill-queries", np.float32)
        if not 1 <= int(neighbours) <= MAX_NEIGHBOURS:
            raise ValueError(f"neighbours must be in 1..{MAX_NEIGHBOURS}, got {neighbours}")
        if int(samples.shape[0]) == 0:
            raise St3dError("no sampled points to fill the map from")
        out = self.buffer("fill", (int(queries.shape[0]),), np.float32)
        blocks = _blocks(out.shape[0], self.threads)
        fill_kernel()[blocks, self.threads, self.stream](
            samples, scores, queries, int(neighbours), float(power), out
        )
        return out

    def image_score(
        self, points: Any, scores: Any, knn: Any, neighbours: int = IMAGE_SCORE_NEIGHBOURS
    ) -> float:
        """Max over points of the mean score of the first ``neighbours`` kNN entries (downloads m floats)."""
        from st3d_edge.runtime.cuda.small_kernels import neighbour_mean_kernel

        scores = self._as_device(scores, "image-scores", np.float32)
        knn = self._as_device(knn, "image-knn")
        width = min(int(neighbours), int(knn.shape[1]))
        out = self.buffer("smoothed", (int(knn.shape[0]),), np.float32)
        neighbour_mean_kernel()[_blocks(out.shape[0], self.threads), self.threads, self.stream](
            scores, knn, width, out
        )
        return float(self.to_host(out).max())
