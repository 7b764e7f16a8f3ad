from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from st3d_edge.errors import MissingExtraError, St3dError
from st3d_edge.runtime import geometry_backend
from st3d_edge.runtime.geometry_backend import CpuGeometry, call, select_geometry


def test_cpu_and_auto_without_gpu(monkeypatch):
    assert isinstance(select_geometry("cpu"), CpuGeometry)
    monkeypatch.setattr(geometry_backend, "cuda_geometry_available", lambda: False)
    assert isinstance(select_geometry("auto"), CpuGeometry)
    with pytest.raises(St3dError, match="unknown geometry"):
        select_geometry("gpu")


def test_cuda_without_gpu_says_so_and_without_numba_names_the_gpu_extra(monkeypatch):
    monkeypatch.setattr(geometry_backend, "cuda_geometry_available", lambda: False)
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    # numba-cuda installed, no GPU: nothing to pip install, so no install advice.
    with pytest.raises(St3dError) as info:
        select_geometry("cuda")
    assert not isinstance(info.value, MissingExtraError)
    assert str(info.value) == "--geometry cuda: numba.cuda sees no CUDA GPU; use --geometry cpu"
    monkeypatch.setitem(sys.modules, "numba.cuda", None)
    with pytest.raises(MissingExtraError, match=r"numba-cuda .*st3d-edge\[gpu\]"):
        select_geometry("cuda")


class _ContractOnly:
    """A geometry backend with only the three methods of the contract."""

    def __init__(self):
        self.cpu = CpuGeometry(workers=1)

    def sample(self, points, n, sampler):
        return self.cpu.sample(points, n, sampler)

    def knn(self, points, k):
        return self.cpu.knn(points, k)

    def fill(self, sample_points, scores, query_points):
        return self.cpu.fill(sample_points, scores, query_points)


def test_missing_optional_methods_fall_back_to_host_code():
    rng = np.random.default_rng(0)
    points = rng.random((50, 3)).astype(np.float32)
    g = _ContractOnly()
    idx = g.sample(call(g, "to_device", points), 10, "fps")
    taken = call(g, "take", points, idx)
    np.testing.assert_array_equal(taken, points[idx])
    knn = g.knn(taken, 4)
    scores = rng.random(10).astype(np.float32)
    expected = float(scores[knn].mean(axis=1).max())  # 4 < 8 neighbours: all of them
    assert call(g, "image_score", taken, scores, knn) == pytest.approx(expected)
    call(g, "synchronize")


SIMULATED = """
import numpy as np
from pathlib import Path
from st3d_edge.runtime.backends import OnnxRuntimeBackend
from st3d_edge.runtime.cuda import CudaGeometry
from st3d_edge.runtime.geometry_backend import CpuGeometry
from st3d_edge.runtime.pipeline import ScanScorer
from tests.helpers import FLOAT32_DIFFERENT_KERNELS, assert_close
from tests.runtime_fixtures import ToyBundle, organized_cloud, toy_scan, write_toy_scorer

scan = toy_scan(organized_cloud(8, 10, seed=3))
backend = OnnxRuntimeBackend(write_toy_scorer(Path(TMP) / "m.onnx", k=6), threads=1)
bundle = ToyBundle(n=24, k=6, sampler="fps-exact")
cpu = ScanScorer(bundle, backend, CpuGeometry(workers=1)).score(scan)
gpu = ScanScorer(bundle, backend, CudaGeometry(threads=16, fps_threads=16)).score(scan)
assert_close(gpu.anomaly_map, cpu.anomaly_map, **FLOAT32_DIFFERENT_KERNELS, what="map")
assert_close(gpu.image_score, cpu.image_score, **FLOAT32_DIFFERENT_KERNELS, what="image score")
assert gpu.sampled_points == 24
# the fused score: the CPU takes the kNN graph and FPFH's neighbours from one query, the GPU
# geometry (no knn_and_nearest) from two
from st3d_edge.calibration.fusion import Fusion
from st3d_edge.calibration.geometric import GeometricScore, GeometricSettings
from st3d_edge.calibration.scoring import Scoring
good = toy_scan(organized_cloud(8, 10, seed=4, bump=False)).points
scoring = Scoring("fused", GeometricScore.fit([good], GeometricSettings(s=0.05)), Fusion(0.1, 0.5, 30.0, 8.0))
cpu = ScanScorer(bundle, backend, CpuGeometry(workers=1), scoring).score(scan)
gpu = ScanScorer(bundle, backend, CudaGeometry(threads=16, fps_threads=16), scoring).score(scan)
assert_close(gpu.anomaly_map, cpu.anomaly_map, **FLOAT32_DIFFERENT_KERNELS, what="fused map")
print("ok")
"""


def test_pipeline_with_cuda_geometry_under_the_simulator_matches_cpu(tmp_path):
    """Device arrays flow through the pipeline unchanged (numba's CUDA simulator, no GPU needed)."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    code = f"TMP = {str(tmp_path)!r}\n" + textwrap.dedent(SIMULATED)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("ok")


def test_fill_scan_takes_the_pixel_grid_only_for_organized_scans_with_fill_grid():
    from pathlib import Path

    from st3d_edge.runtime.geometry_backend import fill_scan
    from tests.runtime_fixtures import organized_cloud, toy_scan

    scan = toy_scan(organized_cloud(16, 20, seed=5), Path("a.tiff"))
    cpu = CpuGeometry(workers=1)
    idx = cpu.sample(scan.points, 60, "fps-exact")
    sampled = cpu.take(scan.points, idx)
    knn = cpu.knn(sampled, 8)
    scores = np.random.default_rng(1).random(60).astype(np.float32)
    used = []

    class Recording(CpuGeometry):
        def fill(self, *args):
            used.append("fill")
            return super().fill(*args)

        def fill_grid(self, *args):
            used.append("fill_grid")
            return super().fill_grid(*args)

    organized = fill_scan(Recording(), scan, sampled, scores, scan.points, idx, knn)
    unorganized = fill_scan(
        Recording(),
        scan.__class__(scan.path, None, scan.points, None),
        sampled,
        scores,
        scan.points,
        idx,
        knn,
    )
    plain = fill_scan(_ContractOnly(), scan, sampled, scores, scan.points, idx, knn)
    assert used == ["fill_grid", "fill"]
    np.testing.assert_allclose(organized, unorganized, rtol=1e-6)
    np.testing.assert_array_equal(plain, unorganized)
