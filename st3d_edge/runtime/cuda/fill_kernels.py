"""Inverse-distance fill of the sampled points' scores to every valid pixel, on the GPU.

One thread per query pixel finds its ``neighbours`` nearest sampled points by brute force
(sampled points staged through shared memory in tiles, as in ``knn_kernels``) and blends their
scores with weights ``1 / distance**power``, the rule of ``st3d_edge.geometry.fill.idw_fill``.

Decisions (the same as the CPU fill):

- A pixel that coincides with sampled points (squared float32 distance 0) takes their score,
  the mean over the coincident ones among its ``neighbours`` nearest, as the CPU fill does.
- Ties among neighbours are broken by the lower sample index; fewer sampled points than
  ``neighbours`` uses them all.
- Weights and the weighted mean are accumulated in float64 (a few operations per pixel), the
  distances are float32 like every other kernel here.
"""

from __future__ import annotations

import functools
import math

from st3d_edge.runtime.cuda.device_math import MAX_THREADS, device_functions, import_numba

# numba's names, bound by ``import_numba(globals())`` on first use (see ``device_math``).
cuda = float32 = int32 = None


MAX_NEIGHBOURS = 32


@functools.cache
def fill_kernel():
    """``kernel[blocks, threads, stream](samples[m, 3], scores[m], queries[q, 3], nb, power, out[q])``."""
    import_numba(globals())

    tiled_topk = device_functions().tiled_topk

    @cuda.jit
    def idw_fill(samples, scores, queries, neighbours, power, out):
        tile = cuda.shared.array((3, MAX_THREADS), float32)
        top_d = cuda.local.array(MAX_NEIGHBOURS, float32)
        top_i = cuda.local.array(MAX_NEIGHBOURS, int32)
        q = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        active = q < queries.shape[0]
        nb = min(neighbours, samples.shape[0])
        tiled_topk(samples, queries, q, -1, tile, top_d, top_i, nb)
        if active:
            if top_d[0] == 0.0:
                hits = 0
                total = 0.0
                for j in range(nb):
                    if top_d[j] == 0.0:
                        hits += 1
                        total += float(scores[top_i[j]])
                out[q] = total / hits
            else:
                num = 0.0
                den = 0.0
                half_power = 0.5 * power
                for j in range(nb):
                    w = 1.0 / math.pow(float(top_d[j]), half_power)
                    num += w * float(scores[top_i[j]])
                    den += w
                out[q] = num / den

    return idw_fill
