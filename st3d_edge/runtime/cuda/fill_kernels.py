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

from st3d_edge.runtime.cuda.device_math import INF32, MAX_THREADS, device_functions

# numba's names, bound on first use (importing numba is the gpu extra's cost). They must be
# module globals, not closure variables: the CUDA simulator swaps in its fake ``cuda`` module
# by rewriting the kernel's globals only.
cuda = float32 = int32 = None


def _import_numba() -> None:
    global cuda, float32, int32
    from numba import cuda, float32, int32


MAX_NEIGHBOURS = 32


@functools.cache
def fill_kernel():
    """``kernel[blocks, threads, stream](samples[m, 3], scores[m], queries[q, 3], nb, power, out[q])``."""
    _import_numba()

    fns = device_functions()
    sqdist = fns.sqdist
    topk_insert = fns.topk_insert

    @cuda.jit
    def idw_fill(samples, scores, queries, neighbours, power, out):
        tile = cuda.shared.array((3, MAX_THREADS), float32)
        top_d = cuda.local.array(MAX_NEIGHBOURS, float32)
        top_i = cuda.local.array(MAX_NEIGHBOURS, int32)
        m = samples.shape[0]
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        q = cuda.blockIdx.x * threads + tid
        active = q < queries.shape[0]
        nb = min(neighbours, m)
        for j in range(nb):
            top_d[j] = INF32
            top_i[j] = -1
        qx = float32(0.0)
        qy = float32(0.0)
        qz = float32(0.0)
        if active:
            qx = queries[q, 0]
            qy = queries[q, 1]
            qz = queries[q, 2]
        for base in range(0, m, threads):
            c = base + tid
            if c < m:
                tile[0, tid] = samples[c, 0]
                tile[1, tid] = samples[c, 1]
                tile[2, tid] = samples[c, 2]
            cuda.syncthreads()
            if active:
                for j in range(min(threads, m - base)):
                    d = sqdist(tile[0, j], tile[1, j], tile[2, j], qx, qy, qz)
                    topk_insert(d, base + j, top_d, top_i, nb)
            cuda.syncthreads()
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
