"""Keep freed memory in the process for the next scan, instead of fresh pages for every scan.

Every scan allocates the same few hundred MB of arrays (neighbour lists, the network's
activations, FPFH histograms) and frees them. glibc's malloc serves every block over its mmap
threshold (32 MB at most) with a fresh mapping and unmaps it when freed, and gives the top of
its heap back past a trim threshold; so the next scan's arrays are new pages again, which the
kernel maps and zeroes one at a time on first touch (numba's own allocations get 4 KiB pages:
100 MB written by a numba kernel took 120 ms instead of 10 ms in reused memory here). With
mmap off and the heap never trimmed, a freed block is reused as it is: on the 800 x 800 scan
the page faults per scan went from about 25,000 to none after the first scan
(benchmarks/runtime.py, ``--system-malloc`` for the comparison).

The price: the process keeps its high-water mark of memory, which is what the peak RSS figures
count anyway; memory freed after a burst is not returned to the system until the process ends.
This is process-wide, so it is a choice for a process that scans: :class:`Detector` makes it
by default, ``keep_freed_memory=False`` leaves malloc alone. Off glibc (musl's mallopt does
nothing, macOS and Windows have none) nothing changes.
"""

from __future__ import annotations

import ctypes
import functools

# glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
NEVER_TRIM = 2**31 - 1  # the largest threshold mallopt's int takes: 2 GiB of free heap top


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc's malloc serve large blocks from its heap (no mmap) and never trim the heap,
    for the rest of the process. True if malloc took both settings."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library to open, or one without mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
