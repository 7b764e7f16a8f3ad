"""Device helpers shared by the geometry kernels: the squared distance and the top-k insertion.

Why a rounded squared distance: the GPU compiler contracts ``a * b + c`` into one fused
multiply-add by default, which rounds once instead of twice, so a GPU distance can differ from
the numpy one in the last bit and flip a near-tie in FPS or kNN. On a real GPU the distance is
therefore built from ``fmul_rn`` / ``fadd_rn`` (never fused), in the order
``(dx*dx + dy*dy) + dz*dz`` in float32, which is exactly what the numpy references compute.
The simulator's libdevice is a stub, and plain Python float32 arithmetic is never fused there,
so it uses the plain expression.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

import numpy as np

INF32 = np.float32(np.inf)
MAX_THREADS = 1024  # the largest block any kernel accepts (sizes the shared scratch arrays)

# numba's names, bound on first use by :func:`import_numba` (importing numba is the gpu extra's
# cost). They must be module globals, not closure variables: the CUDA simulator swaps in its
# fake ``cuda`` module by rewriting the kernel's globals only.
cuda = float32 = int32 = None


def import_numba(namespace: dict) -> None:
    """Bind numba's ``cuda``, ``float32`` and ``int32`` as globals of the module owning ``namespace``.

    Each kernel module declares ``cuda = float32 = int32 = None`` and calls
    ``import_numba(globals())`` before it compiles a kernel.
    """
    from numba import cuda, float32, int32

    namespace.update(cuda=cuda, float32=float32, int32=int32)


def simulator_enabled() -> bool:
    from numba import config

    return bool(config.ENABLE_CUDASIM)


@functools.cache
def device_functions() -> SimpleNamespace:
    """The compiled device functions (built on first use so importing this module stays light)."""
    import_numba(globals())

    if simulator_enabled():

        @cuda.jit(device=True)
        def sqdist(ax, ay, az, bx, by, bz):
            dx = ax - bx
            dy = ay - by
            dz = az - bz
            return (dx * dx + dy * dy) + dz * dz

    else:
        from numba.cuda import libdevice

        @cuda.jit(device=True)
        def sqdist(ax, ay, az, bx, by, bz):
            dx = ax - bx
            dy = ay - by
            dz = az - bz
            xy = libdevice.fadd_rn(libdevice.fmul_rn(dx, dx), libdevice.fmul_rn(dy, dy))
            return libdevice.fadd_rn(xy, libdevice.fmul_rn(dz, dz))

    @cuda.jit(device=True)
    def topk_insert(d, i, top_d, top_i, k):
        """Insert candidate (d, i) into the ascending list top_d[:k]; on equal d the earlier stays first.

        Candidates arrive in increasing index order, so "earlier" is "lower index": the tie rule
        of every reference in this package.
        """
        if d >= top_d[k - 1]:
            return
        j = k - 1
        while j > 0 and top_d[j - 1] > d:
            top_d[j] = top_d[j - 1]
            top_i[j] = top_i[j - 1]
            j -= 1
        top_d[j] = d
        top_i[j] = i

    @cuda.jit(device=True)
    def tiled_topk(cands, queries, q, skip, tile, top_d, top_i, k):
        """Fill top_d/top_i[:k] with the k nearest of ``cands`` to ``queries[q]``, ascending.

        Every thread of the block must call it (it synchronises): the block walks over
        ``cands`` in tiles of ``blockDim`` candidates staged in ``tile`` (shared ``(3, threads)``
        float32), so each candidate is read from global memory once per block. Threads with
        ``q`` past the end of ``queries`` only help stage tiles. Candidate ``skip`` is left out
        (the query itself for kNN, -1 for none). Unused slots stay (inf, -1).
        """
        m = cands.shape[0]
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        active = q < queries.shape[0]
        for j in range(k):
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
                tile[0, tid] = cands[c, 0]
                tile[1, tid] = cands[c, 1]
                tile[2, tid] = cands[c, 2]
            cuda.syncthreads()
            if active and k > 0:
                for j in range(min(threads, m - base)):
                    cand = base + j
                    if cand != skip:
                        d = sqdist(tile[0, j], tile[1, j], tile[2, j], qx, qy, qz)
                        topk_insert(d, cand, top_d, top_i, k)
            cuda.syncthreads()  # the tile is overwritten next round only after everyone used it

    return SimpleNamespace(sqdist=sqdist, topk_insert=topk_insert, tiled_topk=tiled_topk)
