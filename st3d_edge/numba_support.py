"""Whether numba is installed: the one check behind every optional numba kernel.

numba is in the ``train`` and ``runtime`` extras; code with a numba fast path keeps a numpy or
torch path for an install without it, and asks here which to take.
"""

from __future__ import annotations

import functools


@functools.cache
def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True
