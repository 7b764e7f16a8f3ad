"""The exported scorer graph run by numba kernels on the CPU, without (n, k, c) intermediates.

The exported graph (:mod:`st3d_edge.export.fused_scorer`) is bound by memory traffic on a CPU:
every LFA writes and reads (n, k, c) tensors, tens to hundreds of MB each at n = 64000,
k = 32, which onnxruntime keeps in its arena. Here the same arithmetic runs point by point, so
a point's k pairs stay in registers and cache:

* one kernel computes G = (p - p_j, ||p - p_j||) once per pair and, for every LFA of every
  block of both networks at once, ``sum_j leaky(W G + b)`` (the graph's ``geo_w.i``/``geo_b.i``,
  which already carry the 1/k of the mean);
* one kernel sums the neighbours' features, ``sum_j f[knn[p, j]]``;
* the dense layers are the graph's own matrices, multiplied by numpy (BLAS).

The weights are read by name from the ONNX file's initializers, so the graph stays the one
artefact of the bundle (its checksum covers them) and nothing is exported twice. Only the FP32
graph is accepted: the FP16 one would be a different function. ``st3d_edge.export.fused_scorer``
is the reference; a test compares this backend with onnxruntime on the same graph.

Measured on an 800 x 800 scan (n = 64000, 2 threads, benchmarks/runtime.py): the inference stage
0.39 s against 1.24 s for onnxruntime and 0.83 s for PyTorch eager with its numba pooling
kernels (the dense layers here multiply the block-diagonal two-network matrices whole); the
whole runtime's peak RSS 0.56 GiB against 1.4 GiB with onnxruntime.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from st3d_edge.blas_threads import one_blas_thread
from st3d_edge.errors import MissingExtraError, file_error
from st3d_edge.export.weights import LEAKY_SLOPE


@dataclass
class GraphWeights:
    """The scorer graph's parameters (names as ``FusedScorer`` registers them), float32."""

    s: float
    k: int
    mu: np.ndarray  # (d,)
    sigma: np.ndarray  # (d,)
    geo_w: np.ndarray  # (g, C): every block's geometric MLPs side by side, transposed
    geo_b: np.ndarray  # (C,)
    geo_widths: list[int]  # C of each block, [T geo1 | S geo1 | T geo2 | S geo2]
    first_post_w: np.ndarray
    first_post_b: np.ndarray
    first_skip: np.ndarray
    pre_skip: list[tuple[np.ndarray, np.ndarray]]
    post: list[tuple[np.ndarray, np.ndarray]]
    head1: tuple[np.ndarray, np.ndarray]
    head2: tuple[np.ndarray, np.ndarray]

    @property
    def d(self) -> int:
        return int(self.mu.shape[0])


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise MissingExtraError("onnx", "runtime", "reading the scorer graph's weights") from None
    return onnx, numpy_helper


def read_graph_weights(path: str | Path) -> GraphWeights:
    """The parameters of an exported FP32 scorer graph file; a one-line error for anything else."""
    onnx, _ = _onnx()
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise file_error(path, f"cannot read the ONNX graph ({str(exc).splitlines()[0]})") from None
    return graph_weights(model, path)


def graph_weights(model: Any, path: str | Path = "the scorer graph") -> GraphWeights:
    """The parameters of an exported FP32 scorer graph (an ``onnx.ModelProto``); ``path`` names
    it in errors."""
    _, numpy_helper = _onnx()
    tensors = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    if any(t.dtype != np.float32 for t in tensors.values() if t.dtype.kind == "f"):
        raise file_error(path, "the CPU scorer runs the FP32 graph only; this graph holds FP16 weights")
    knn = next((i for i in model.graph.input if i.name == "knn"), None)
    k = knn.type.tensor_type.shape.dim[1].dim_value if knn is not None else 0
    groups = sum(1 for name in tensors if name.startswith("geo_w."))
    blocks = 1 + sum(1 for name in tensors if name.startswith("post_w."))
    if groups < 1:
        raise file_error(path, "not a scorer graph of this package: no geometric MLP weights")
    try:
        # the channel groups of every block in order (FusedScorer.geo_groups); every block
        # has the same width, [T geo1 | S geo1 | T geo2 | S geo2] = 3 d / 2 per network pair
        geo_w = np.vstack([tensors[f"geo_w.{j}"] for j in range(groups)])
        geo_b = np.concatenate([tensors[f"geo_b.{j}"].reshape(-1) for j in range(groups)])
        rest = [(tensors[f"pre_skip_w.{i}"], tensors[f"pre_skip_b.{i}"]) for i in range(blocks - 1)]
        post = [(tensors[f"post_w.{i}"], tensors[f"post_b.{i}"]) for i in range(blocks - 1)]
        weights = GraphWeights(
            s=float(tensors["s"]),
            k=int(k),
            mu=tensors["mu"].reshape(-1),
            sigma=tensors["sigma"].reshape(-1),
            geo_w=np.ascontiguousarray(geo_w.T),
            geo_b=geo_b,
            geo_widths=[len(geo_b) // blocks] * blocks,
            first_post_w=tensors["first_post_w"],
            first_post_b=tensors["first_post_b"],
            first_skip=tensors["first_skip"],
            pre_skip=rest,
            post=post,
            head1=(tensors["head1_w"], tensors["head1_b"]),
            head2=(tensors["head2_w"], tensors["head2_b"]),
        )
    except KeyError as missing:
        raise file_error(path, f"not a scorer graph of this package: no parameter {missing}") from None
    if len(geo_b) != 3 * weights.d * blocks // 2 or weights.first_post_w.shape[0] != 3 * weights.d // 2:
        raise file_error(path, "not a scorer graph of this package: its layer widths do not match")
    if k < 1:
        raise file_error(path, "not a scorer graph of this package: no fixed k")
    return weights


_ROWS = 1024  # rows per BLAS call in the dense kernel


@functools.cache
def _kernels():
    import numba

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def geometric_sums(x, knn, weight_t, bias, slope, out):
        # out[p] = sum_j leaky(G(p, p_j) @ weight_t + bias); G has 4 channels, or 7 with the
        # absolute coordinates of p (the paper's ablation)
        n, k = knn.shape
        g, channels = weight_t.shape
        for p in numba.prange(n):
            acc = np.zeros(channels, dtype=np.float32)
            z = np.empty(channels, dtype=np.float32)
            geo = np.empty(g, dtype=np.float32)
            for j in range(k):
                q = knn[p, j]
                dx = x[p, 0] - x[q, 0]
                dy = x[p, 1] - x[q, 1]
                dz = x[p, 2] - x[q, 2]
                dist = np.sqrt(dx * dx + dy * dy + dz * dz)
                if g == 4:
                    # one pass over the channels: z stays in registers
                    for c in range(channels):
                        v = (
                            bias[c]
                            + dx * weight_t[0, c]
                            + dy * weight_t[1, c]
                            + dz * weight_t[2, c]
                            + dist * weight_t[3, c]
                        )
                        acc[c] += max(v, slope * v)
                else:
                    geo[0], geo[1], geo[2], geo[3] = dx, dy, dz, dist
                    geo[4], geo[5], geo[6] = x[p, 0], x[p, 1], x[p, 2]
                    z[:] = bias
                    for r in range(g):
                        value = geo[r]
                        for c in range(channels):
                            z[c] += value * weight_t[r, c]
                    for c in range(channels):
                        acc[c] += max(z[c], slope * z[c])
            out[p, :] = acc

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def neighbour_sums(features, knn, out):
        n, k = knn.shape
        channels = features.shape[1]
        for p in numba.prange(n):
            acc = np.zeros(channels, dtype=np.float32)
            for j in range(k):
                q = knn[p, j]
                for c in range(channels):
                    acc[c] += features[q, c]
            out[p, :] = acc

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def dense(x, weight, bias, slope, skip, out):
        # out = leaky(x @ weight + bias) (+ skip when it has out's shape), by blocks of rows:
        # each thread's block is one BLAS product (numba's np.dot), kept single-threaded by
        # :func:`score` (st3d_edge.blas_threads); slope 1 makes the layer linear
        n, channels = out.shape
        add_skip = skip.shape[0] == n
        blocks = (n + _ROWS - 1) // _ROWS
        for t in numba.prange(blocks):
            lo, hi = t * _ROWS, min(n, (t + 1) * _ROWS)
            y = np.dot(x[lo:hi], weight)
            for p in range(hi - lo):
                for c in range(channels):
                    v = y[p, c] + bias[c]
                    v = max(v, slope * v)
                    if add_skip:
                        v += skip[lo + p, c]
                    out[lo + p, c] = v

    return geometric_sums, neighbour_sums, dense


_NO_SKIP = np.zeros((0, 0), dtype=np.float32)


def _dense(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    skip: np.ndarray = _NO_SKIP,
    slope: float = LEAKY_SLOPE,
) -> np.ndarray:
    """leaky(x @ weight + bias) (+ skip), see the kernel ``dense``; ``slope=1`` for a linear layer."""
    *_, dense = _kernels()
    out = np.empty((len(x), weight.shape[1]), dtype=np.float32)
    dense(np.ascontiguousarray(x), np.ascontiguousarray(weight), bias, np.float32(slope), skip, out)
    return out


def _with_neighbour_sum(own: np.ndarray, features: np.ndarray, knn: np.ndarray) -> np.ndarray:
    """[own | sum_j features[knn[:, j]]] as one (n, c_own + c) array (an LFA's output)."""
    _, neighbour_sums, _ = _kernels()
    out = np.empty((len(own), own.shape[1] + features.shape[1]), dtype=np.float32)
    out[:, : own.shape[1]] = own
    neighbour_sums(np.ascontiguousarray(features), knn, out[:, own.shape[1] :])
    return out


def score(weights: GraphWeights, points: np.ndarray, knn: np.ndarray) -> np.ndarray:
    """scores (n,) float32, the function of ``FusedScorer.forward`` (same parameters, same order);
    one call at a time per process (:data:`st3d_edge.numba_support.KERNEL_LOCK`)."""
    from st3d_edge.numba_support import KERNEL_LOCK

    with KERNEL_LOCK, one_blas_thread():
        return _score(weights, points, knn)


def _score(weights: GraphWeights, points: np.ndarray, knn: np.ndarray) -> np.ndarray:
    geometric_sums, *_ = _kernels()
    x = np.ascontiguousarray(points, dtype=np.float32) / np.float32(weights.s)
    knn = np.ascontiguousarray(knn, dtype=np.int32)
    geo = np.empty((len(x), weights.geo_w.shape[1]), dtype=np.float32)
    geometric_sums(x, knn, weights.geo_w, weights.geo_b, np.float32(LEAKY_SLOPE), geo)
    bounds = np.cumsum([0, *weights.geo_widths])

    def block_geo(i: int) -> tuple[np.ndarray, np.ndarray]:
        part = geo[:, bounds[i] : bounds[i + 1]]
        width = weights.geo_widths[i] // 3  # geo1 (d/4 per network) of d/4 + d/2 per network
        return part[:, :width], part[:, width:]

    geo1, geo2 = block_geo(0)
    lfa2 = _with_neighbour_sum(geo2, geo1, knn)
    f = _dense(
        lfa2,
        weights.first_post_w,
        weights.first_post_b,
        np.broadcast_to(weights.first_skip, (len(x), len(weights.first_skip))),
    )
    for i, ((pre_w, pre_b), (post_w, post_b)) in enumerate(zip(weights.pre_skip, weights.post, strict=True)):
        geo1, geo2 = block_geo(i + 1)
        pre_skip = _dense(f, pre_w, pre_b)
        h_width = pre_w.shape[1] - f.shape[1]
        h_over_k, skip = pre_skip[:, :h_width], pre_skip[:, h_width:]
        lfa1 = _with_neighbour_sum(geo1, h_over_k, knn)
        lfa2 = _with_neighbour_sum(geo2, lfa1, knn)
        f = _dense(lfa2, post_w, post_b, skip)
    f = _dense(f, *weights.head1)
    f = _dense(f, *weights.head2, slope=1.0)
    d = weights.d
    normalized = (f[:, :d] - weights.mu) / weights.sigma
    diff = f[:, d:] - normalized
    return np.sqrt((diff * diff).sum(axis=1)).astype(np.float32)


class NumbaCpuBackend:
    """The bundle's FP32 graph run by :func:`score`; ``run(points, knn) -> scores`` on the host."""

    name = "numba-cpu"
    on_device = False
    device = "CPU"

    def __init__(self, model_path: str | Path, threads: int = 0) -> None:
        try:
            import numba
        except ImportError:
            raise MissingExtraError("numba", "runtime", "the CPU scorer") from None
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise file_error(self.model_path, "ONNX model not found")
        self.weights = read_graph_weights(self.model_path)
        self.k = self.weights.k
        if threads:
            numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
        self._warm_up()

    def _warm_up(self) -> None:
        """Compile (or load from numba's cache) every kernel now, on a tiny cloud, so the first
        scan's latency is a scan's and not the compiler's."""
        count = self.k + 1
        points = np.zeros((count, 3), dtype=np.float32)
        points[:, 0] = np.arange(count, dtype=np.float32) * np.float32(self.weights.s)
        knn = (np.arange(count, dtype=np.int32)[:, None] + np.arange(self.k, dtype=np.int32)) % count
        score(self.weights, points, knn)

    def run(self, points: Any, knn: Any) -> np.ndarray:
        from st3d_edge.runtime.geometry_backend import to_host_array

        points, knn = to_host_array(points), np.asarray(to_host_array(knn))
        if knn.ndim != 2 or knn.shape[1] != self.k:
            raise file_error(self.model_path, f"the graph takes k = {self.k} neighbours, got {knn.shape}")
        return score(self.weights, np.asarray(points), knn)
