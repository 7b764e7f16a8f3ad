from __future__ import annotations

import os

import pytest

# Keep tests deterministic and polite on 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Keys in the user's own trust folder must not change what the tests load (subprocesses inherit it).
os.environ["ST3D_EDGE_TRUST_DIR"] = os.path.join(os.path.dirname(__file__), "no-trusted-keys-here")


def pytest_collection_modifyitems(config, items):
    # the runtime's own check: a real GPU that numba.cuda sees, the simulator not counted
    from st3d_edge.runtime.geometry_backend import cuda_geometry_available

    if cuda_geometry_available():
        return
    skip = pytest.mark.skip(reason="needs a real CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
