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


def simulator_enabled() -> bool:
    from numba import config

    return bool(config.ENABLE_CUDASIM)


@functools.cache
def device_functions() -> SimpleNamespace:
    """The compiled device functions (built on first use so importing this module stays light)."""
    from numba import cuda

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

    return SimpleNamespace(sqdist=sqdist, topk_insert=topk_insert)
