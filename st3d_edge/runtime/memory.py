"""Peak memory of this process: host RSS and, when a CUDA device is in use, device memory.

Peak host RSS comes from the kernel's high-water mark (``ru_maxrss`` / psutil's ``peak_wset``
on Windows), so it covers the whole process lifetime, model loading included; psutil's
current RSS is reported beside it. Device memory is the used memory of the current CUDA
context as the driver reports it (``numba.cuda``), which also counts other libraries'
allocations in this process (onnxruntime's arena, TensorRT's workspace).
"""

from __future__ import annotations

import sys


def host_rss_mb() -> float:
    """Current resident set size in MiB."""
    try:
        import psutil
    except ImportError:  # psutil is in the runtime extra; fall back to the peak figure
        return peak_host_rss_mb()
    return psutil.Process().memory_info().rss / 2**20


def peak_host_rss_mb() -> float:
    """High-water mark of the resident set size in MiB.

    On Linux this is the address space's own mark (``VmHWM``): ``ru_maxrss`` also keeps the
    parent's resident size from before ``exec``, so a benchmark's child process would report
    at least what its parent held.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return getattr(info, "peak_wset", info.rss) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def device_used_mb() -> float | None:
    """Used memory of the current CUDA device in MiB, or None without a usable GPU."""
    try:
        from numba import cuda

        if not cuda.is_available():
            return None
        free, total = cuda.current_context().get_memory_info()
    except Exception:  # no numba-cuda, no driver, or the simulator: nothing to report
        return None
    return (total - free) / 2**20
