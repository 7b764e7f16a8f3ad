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

Every kernel writes where the next one reads: the geometric sums go straight into the first
columns of the LFA arrays, the neighbour sums into the rest, and a block's pre-MLP writes h and
the skip as two arrays; so no array is copied between kernels (at n = 64000 the neighbour sums
with their copies took 186 ms, without them 82 ms; the same values bit for bit).

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
    def geometric_sums(x, knn, weight_t, bias, slope, dests, starts):
        # channels starts[i] to starts[i + 1] of sum_j leaky(G(p, p_j) @ weight_t + bias) go
        # to the first columns of dests[i], the arrays the LFAs read; G has 4 channels, or 7
        # with the absolute coordinates of p (the paper's ablation)
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
            for i in range(len(dests)):
                dests[i][p, : starts[i + 1] - starts[i]] = acc[starts[i] : starts[i + 1]]

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
    def dense(x, weight, bias, slope, skip, out, rest):
        # [out | rest] = leaky(x @ weight + bias) (+ skip when it has out's shape), by blocks of
        # rows: each thread's block is one BLAS product (numba's np.dot), kept single-threaded
        # by :func:`score` (st3d_edge.blas_threads); slope 1 makes the layer linear. ``rest``
        # (n rows, maybe no columns) takes the columns past out's, as an array of their own
        n, split = out.shape
        channels = weight.shape[1]
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
                    y[p, c] = v
                out[lo + p, :] = y[p, :split]
                rest[lo + p, :] = y[p, split:]

    return geometric_sums, neighbour_sums, dense


_NO_SKIP = np.zeros((0, 0), dtype=np.float32)


def _dense(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    skip: np.ndarray = _NO_SKIP,
    slope: float = LEAKY_SLOPE,
    split: int | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """leaky(x @ weight + bias) (+ skip), see the kernel ``dense``; ``slope=1`` for a linear layer;
    ``split``: the columns before it and from it as two arrays."""
    *_, dense = _kernels()
    channels = weight.shape[1]
    split = channels if split is None else split
    out = np.empty((len(x), split), dtype=np.float32)
    rest = np.empty((len(x), channels - split), dtype=np.float32)  # n rows, maybe no columns
    dense(np.ascontiguousarray(x), np.ascontiguousarray(weight), bias, np.float32(slope), skip, out, rest)
    return out if split == channels else (out, rest)


def _neighbour_sum_into(lfa: np.ndarray, start: int, features: np.ndarray, knn: np.ndarray) -> np.ndarray:
    """Writes sum_j features[knn[:, j]] into ``lfa``'s columns from ``start``; returns ``lfa``."""
    _, neighbour_sums, _ = _kernels()
    neighbour_sums(features, knn, lfa[:, start:])
    return lfa


def _geometric_destinations(
    lfa1: list[np.ndarray], lfa2: list[np.ndarray], w1: int, w2: int
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """(arrays, the first geometric channel of each and one past the last): block i's channels
    [geo1 | geo2] go to the first columns of lfa1[i] and lfa2[i]."""
    dests = tuple(a for pair in zip(lfa1, lfa2, strict=True) for a in pair)
    return dests, np.cumsum([0] + [w1, w2] * len(lfa1)).astype(np.int64)


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
    n, blocks = len(x), len(weights.geo_widths)
    w1 = weights.geo_widths[0] // 3  # a block's geo1 (d/4 per network) of d/4 + d/2 per network
    w2 = weights.geo_widths[0] - w1
    h = weights.pre_skip[0][0].shape[1] - 2 * weights.d if blocks > 1 else 0
    # the LFA outputs, allocated first so that the geometric sums land in them: block 0's
    # [geo2 | sum geo1] (its geo1 on its own, contiguous, for the neighbour sum), then each
    # block's lfa1 = [geo1 | sum h] and lfa2 = [geo2 | sum lfa1]
    geo1_first = np.empty((n, w1), dtype=np.float32)
    lfa2 = [np.empty((n, w2 + w1), dtype=np.float32)]
    lfa1 = [geo1_first]
    for _ in range(1, blocks):
        lfa1.append(np.empty((n, w1 + h), dtype=np.float32))
        lfa2.append(np.empty((n, w2 + w1 + h), dtype=np.float32))
    dests, starts = _geometric_destinations(lfa1, lfa2, w1, w2)
    geometric_sums(x, knn, weights.geo_w, weights.geo_b, np.float32(LEAKY_SLOPE), dests, starts)
    skip = np.broadcast_to(weights.first_skip, (n, len(weights.first_skip)))
    f = _dense(
        _neighbour_sum_into(lfa2[0], w2, geo1_first, knn), weights.first_post_w, weights.first_post_b, skip
    )
    for i, ((pre_w, pre_b), (post_w, post_b)) in enumerate(zip(weights.pre_skip, weights.post, strict=True)):
        h_over_k, skip = _dense(f, pre_w, pre_b, split=h)
        _neighbour_sum_into(lfa1[i + 1], w1, h_over_k, knn)
        f = _dense(_neighbour_sum_into(lfa2[i + 1], w2, lfa1[i + 1], knn), post_w, post_b, skip)
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
