"""Run the CUDA kernel tests under numba's CUDA simulator, in a subprocess.

Why a subprocess: ``NUMBA_ENABLE_CUDASIM`` is read once, when ``numba.cuda`` is first imported,
and it replaces ``numba.cuda`` for the whole process. Setting it in this process would hide a
real GPU from the ``gpu`` tests, and whether it took effect would depend on which test imported
numba first. A child process with the variable set runs tests/test_cuda_kernels.py cleanly and
the parent only reads its verdict.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_kernels_pass_under_the_cuda_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", OMP_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not gpu",
         str(ROOT / "tests" / "test_cuda_kernels.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    summary = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    # every kernel test ran: none skipped (e.g. by a simulator that failed to switch on)
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, summary


def test_importing_the_cuda_package_does_not_import_numba():
    code = (
        "import sys; import st3d_edge.runtime.cuda as c; c.CudaGeometry; "
        "assert 'numba' not in sys.modules, 'numba imported'; print('ok')"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
