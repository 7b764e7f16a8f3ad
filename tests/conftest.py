from __future__ import annotations

import os

import pytest

# Keep tests deterministic and polite on 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "2")


def _has_gpu() -> bool:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="needs a real CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
