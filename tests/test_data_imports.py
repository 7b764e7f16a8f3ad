"""st3d_edge.data imports without torch and without trimesh (trimesh is the train extra)."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys, importlib.abc, importlib, pkgutil
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "trimesh"):
            raise ImportError(name + " is blocked in this test")
sys.meta_path.insert(0, Block())
import st3d_edge.data
for mod in pkgutil.walk_packages(st3d_edge.data.__path__, "st3d_edge.data."):
    importlib.import_module(mod.name)
from st3d_edge.data import scenes
try:
    scenes.pretraining_scene(None, 10)
except scenes.MissingExtraError as exc:
    print("missing:", exc)
print("ok" if not {"torch", "trimesh"} & set(sys.modules) else "leaked")
"""


def test_data_imports_without_torch_or_trimesh_and_names_the_extra():
    res = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[-1] == "ok"
    assert "st3d-edge[train]" in lines[0] and "trimesh" in lines[0]
