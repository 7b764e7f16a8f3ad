"""Small element-wise kernels that keep the pipeline on the device between the big stages."""

from __future__ import annotations

import functools

from st3d_edge.runtime.cuda.device_math import import_numba

# numba's names, bound by ``import_numba(globals())`` on first use (see ``device_math``).
cuda = float32 = int32 = None


@functools.cache
def take_rows_kernel():
    """``kernel[blocks, threads, stream](points[N, 3], idx[m], out[m, 3])``: ``out = points[idx]``."""
    import_numba(globals())

    @cuda.jit
    def take_rows(points, idx, out):
        i = cuda.grid(1)
        if i < idx.shape[0]:
            p = idx[i]
            out[i, 0] = points[p, 0]
            out[i, 1] = points[p, 1]
            out[i, 2] = points[p, 2]

    return take_rows


@functools.cache
def neighbour_mean_kernel():
    """``kernel[blocks, threads, stream](scores[m], knn[m, k], width, out[m])``.

    ``out[i]`` is the mean score of the first ``width`` kNN entries of point i (itself first),
    summed in float64: the smoothing before the image score's max.
    """
    import_numba(globals())

    @cuda.jit
    def neighbour_mean(scores, knn, width, out):
        i = cuda.grid(1)
        if i < knn.shape[0]:
            total = 0.0
            for j in range(width):
                total += float(scores[knn[i, j]])
            out[i] = total / width

    return neighbour_mean
