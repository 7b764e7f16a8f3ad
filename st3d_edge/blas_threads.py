"""BLAS held to one thread around the CPU work that must not share the cores with its threads.

numba's ``np.dot`` calls scipy's BLAS from inside a parallel kernel's own threads; a BLAS free
to start threads of its own there runs two per core (the CPU scorer's dense layers were 2-3x
slower: 0.08-0.13 s against 0.04 s for a (64000, 128) x (128, 160) layer on 2 cores). And
numpy's BLAS threads, woken by the FPFH stage's LAPACK calls, slowed the next scan's numba
network by about 0.2 s (0.6 s against 0.4 s per 800 x 800 scan). Neither gains anything from
more BLAS threads: the products are small or already split over the cores by numba.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager


@functools.cache
def _controller():
    # the controller sees the libraries loaded when it is made: numba's np.dot calls scipy's
    # BLAS, numpy has its own
    import numpy  # noqa: F401
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread() -> AbstractContextManager:
    """Every loaded BLAS at one thread inside the ``with`` block, restored after it."""
    return _controller().limit(limits=1, user_api="blas")
