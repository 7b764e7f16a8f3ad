"""Whether numba is installed, and the lock around the edge's parallel numba kernels.

numba is in the ``train`` and ``runtime`` extras; code with a numba fast path keeps a numpy or
torch path for an install without it, and asks here which to take.

numba's ``workqueue`` threading layer (the one it falls back to without TBB or OpenMP) aborts
the whole process when two Python threads launch parallel kernels at once. A ``Detector``
shared by threads would do that, so the runtime's kernel calls hold :data:`KERNEL_LOCK`: the
kernels already use every core, so serialising them costs no throughput.
"""

from __future__ import annotations

import functools
import threading

KERNEL_LOCK = threading.RLock()


@functools.cache
def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True
