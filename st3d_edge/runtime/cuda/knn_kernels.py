"""k nearest neighbours on the GPU by tiled brute force, the point itself in column 0.

One thread per query point keeps its k-1 nearest *other* points in a sorted local array
(insertion sort); the block walks over all points in tiles of ``blockDim`` candidates that it
first stages in shared memory, so each candidate is read from global memory once per block.

Decisions:

- Column 0 is the query itself, always, even when duplicates of it exist (the graph's
  convention); columns 1..k-1 are the k-1 nearest other points by squared float32 distance,
  ties broken by the lower index (candidates are scanned in index order, see ``device_math``).
- Brute force rather than a grid: the cost is exactly n^2 distance evaluations whatever the
  point distribution, there is no build step, and the result is identical to the reference.
- ``k`` is at most :data:`MAX_K` (local arrays need a size known at compile time) and at most
  the number of points; the host wrapper checks both.
"""

from __future__ import annotations

import functools

from st3d_edge.runtime.cuda.device_math import INF32, MAX_THREADS, device_functions

# numba's names, bound on first use (importing numba is the gpu extra's cost). They must be
# module globals, not closure variables: the CUDA simulator swaps in its fake ``cuda`` module
# by rewriting the kernel's globals only.
cuda = float32 = int32 = None


def _import_numba() -> None:
    global cuda, float32, int32
    from numba import cuda, float32, int32


MAX_K = 64


@functools.cache
def knn_kernel():
    """``kernel[ceil(n / threads), threads, stream](points[n, 3], k, out[n, k])``."""
    _import_numba()

    fns = device_functions()
    sqdist = fns.sqdist
    topk_insert = fns.topk_insert

    @cuda.jit
    def knn_bruteforce(points, k, out):
        tile = cuda.shared.array((3, MAX_THREADS), float32)
        top_d = cuda.local.array(MAX_K, float32)
        top_i = cuda.local.array(MAX_K, int32)
        n = points.shape[0]
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        q = cuda.blockIdx.x * threads + tid
        active = q < n
        others = k - 1
        for j in range(others):
            top_d[j] = INF32
            top_i[j] = -1
        qx = float32(0.0)
        qy = float32(0.0)
        qz = float32(0.0)
        if active:
            qx = points[q, 0]
            qy = points[q, 1]
            qz = points[q, 2]
        for base in range(0, n, threads):
            c = base + tid
            if c < n:
                tile[0, tid] = points[c, 0]
                tile[1, tid] = points[c, 1]
                tile[2, tid] = points[c, 2]
            cuda.syncthreads()
            if active and others > 0:
                for j in range(min(threads, n - base)):
                    cand = base + j
                    if cand != q:
                        d = sqdist(tile[0, j], tile[1, j], tile[2, j], qx, qy, qz)
                        topk_insert(d, cand, top_d, top_i, others)
            cuda.syncthreads()  # the tile is overwritten next round only after everyone used it
        if active:
            out[q, 0] = q
            for j in range(others):
                out[q, j + 1] = top_i[j]

    return knn_bruteforce
