"""scripts/check_wheels.sh: the aarch64 wheel check CI runs (asks the package index; nothing is installed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_wheels.sh"


def _check(*specs: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), "--only", *specs], capture_output=True, text=True, timeout=300
    )


def test_a_spec_without_aarch64_wheels_fails():
    res = _check("fpsample==1.0.2")  # a source archive only
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Python 3.10: FAILED" in res.stderr and "Python 3.12: FAILED" in res.stderr
    assert "fpsample==1.0.2" in res.stderr


def test_the_lower_bound_of_fpsample_has_aarch64_wheels():
    res = _check("fpsample==0.3.3")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Python 3.10: ok (2 packages)" in res.stdout  # fpsample and numpy
