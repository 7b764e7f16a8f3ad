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

from st3d_edge.runtime.cuda.device_math import MAX_THREADS, device_functions, import_numba

# numba's names, bound by ``import_numba(globals())`` on first use (see ``device_math``).
cuda = float32 = int32 = None


MAX_K = 64


@functools.cache
def knn_kernel():
    """``kernel[ceil(n / threads), threads, stream](points[n, 3], k, out[n, k])``."""
    import_numba(globals())

    tiled_topk = device_functions().tiled_topk

    @cuda.jit
    def knn_bruteforce(points, k, out):
        tile = cuda.shared.array((3, MAX_THREADS), float32)
        top_d = cuda.local.array(MAX_K, float32)
        top_i = cuda.local.array(MAX_K, int32)
        q = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        active = q < points.shape[0]
        others = k - 1
        tiled_topk(points, points, q, q, tile, top_d, top_i, others)
        if active:
            out[q, 0] = q
            for j in range(others):
                out[q, j + 1] = top_i[j]

    return knn_bruteforce
