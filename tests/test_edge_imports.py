"""The edge side (runtime, geometry, data, calibration) must import and work without torch."""

from __future__ import annotations

import subprocess
import sys

BLOCK_TORCH = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True)


def test_blocker_really_blocks_torch():
    res = _run("import torch")
    assert res.returncode != 0 and "torch is blocked" in res.stderr


def test_edge_packages_import_without_torch():
    code = """
import pkgutil, importlib
import st3d_edge.runtime, st3d_edge.geometry, st3d_edge.data, st3d_edge.calibration
packages = (st3d_edge.runtime, st3d_edge.geometry, st3d_edge.data, st3d_edge.calibration)
imported = set()
for pkg in packages:
    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(mod.name)
        imported.add(mod.name)
assert {"st3d_edge.calibration.stats", "st3d_edge.calibration.thresholds"} <= imported, imported
assert "torch" not in sys.modules
print("ok")
"""
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("ok")


def test_cli_help_without_torch():
    res = _run(
        "from st3d_edge.cli import app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
        "assert 'torch' not in sys.modules; print('ok')"
    )
    assert res.returncode == 0, res.stderr
