"""The numba CPU scorer against the exported graph in onnxruntime and the float64 reference."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from st3d_edge.errors import St3dError
from st3d_edge.export.onnx_graph import export_scorer_onnx
from st3d_edge.export.parity import onnx_session, run_session
from st3d_edge.model.network import DescriptorNet
from st3d_edge.runtime import backends
from st3d_edge.runtime.backends import select_backend
from st3d_edge.runtime.cpu_scorer import NumbaCpuBackend, read_graph_weights
from tests.export_reference import NETWORK_FLOAT32, cloud_and_knn, random_net, reference_scores
from tests.helpers import FLOAT32_DIFFERENT_KERNELS, assert_close
from tests.runtime_fixtures import write_toy_scorer

D, BLOCKS, K, S = 16, 3, 8, 0.004


def _pair(absolute: bool = False):
    torch.manual_seed(3)
    rng = np.random.default_rng(2)
    nets = [DescriptorNet(D, BLOCKS, absolute_coords=absolute).eval() for _ in range(2)]
    mu = rng.normal(0, 0.5, D).astype(np.float32)
    sigma = rng.uniform(0.5, 2.0, D).astype(np.float32)
    return (*nets, S, mu, sigma)


@pytest.mark.parametrize("absolute", [False, True])
def test_numba_scorer_matches_onnxruntime_on_the_same_graph(tmp_path, absolute):
    path = export_scorer_onnx(*_pair(absolute), K, tmp_path / "model.onnx")
    points, knn = cloud_and_knn(np.random.default_rng(5), 400, K)
    want = run_session(onnx_session(path), points, knn)
    got = NumbaCpuBackend(path, threads=1).run(points, knn)
    assert got.dtype == np.float32 and got.shape == (400,)
    assert_close(got, want, **FLOAT32_DIFFERENT_KERNELS, what="numba vs onnxruntime")


def test_numba_scorer_matches_the_float64_reference(tmp_path):
    rng = np.random.default_rng(0)
    teacher, student = random_net(rng, D, BLOCKS), random_net(rng, D, BLOCKS)
    mu, sigma = rng.normal(size=D), rng.uniform(0.5, 2.0, D)
    path = export_scorer_onnx(teacher, student, S, mu, sigma, K, tmp_path / "model.onnx")
    points, knn = cloud_and_knn(rng, 200, K)
    got = NumbaCpuBackend(path, threads=2).run(points, knn)
    want = reference_scores(teacher, student, S, mu, sigma, points, knn)
    assert_close(got, want, **NETWORK_FLOAT32, what="numba vs float64 reference")


_BLAS_THREADS_INSIDE = """
import json, sys
import numpy as np
import threadpoolctl
from st3d_edge.runtime import cpu_scorer
seen = []
inner = cpu_scorer._score
cpu_scorer._score = lambda *a: seen.append(threadpoolctl.threadpool_info()) or inner(*a)
backend = cpu_scorer.NumbaCpuBackend(sys.argv[1], threads=2)
points = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
backend.run(points, np.arange(50)[:, None].repeat(backend.k, 1) % 50)
print(json.dumps([[p["user_api"], p["num_threads"]] for p in seen[-1]]))
"""


def test_every_blas_runs_one_thread_inside_the_kernels(tmp_path):
    # numba's np.dot calls a BLAS from the kernel's threads; a BLAS starting threads of its own
    # there oversubscribes the cores (the same values, 2-3x slower dense layers). A fresh
    # process, so that nothing but the scorer itself has loaded the BLAS libraries.
    pytest.importorskip("threadpoolctl")
    path = export_scorer_onnx(*_pair(), K, tmp_path / "model.onnx")
    run = subprocess.run(
        [sys.executable, "-c", _BLAS_THREADS_INSIDE, str(path)], capture_output=True, text=True, check=True
    )
    pools = json.loads(run.stdout.strip().splitlines()[-1])
    blas = [threads for api, threads in pools if api == "blas"]
    assert len(blas) >= 1, pools
    assert all(threads == 1 for threads in blas), pools


def test_weights_are_read_by_name(tmp_path):
    path = export_scorer_onnx(*_pair(), K, tmp_path / "model.onnx")
    weights = read_graph_weights(path)
    assert weights.k == K and weights.d == D and weights.s == pytest.approx(S)
    assert len(weights.geo_widths) == BLOCKS and len(weights.post) == BLOCKS - 1
    assert weights.geo_w.shape == (4, sum(weights.geo_widths))


def test_other_graphs_are_one_line_errors(tmp_path):
    toy = write_toy_scorer(tmp_path / "toy.onnx", k=3)
    with pytest.raises(St3dError, match="toy.onnx: not a scorer graph of this package"):
        NumbaCpuBackend(toy)
    fp16 = export_scorer_onnx(*_pair(), K, tmp_path / "half.onnx", precision="fp16")
    with pytest.raises(St3dError, match="half.onnx: the CPU scorer runs the FP32 graph only"):
        NumbaCpuBackend(fp16)
    with pytest.raises(St3dError, match="nope.onnx: ONNX model not found"):
        NumbaCpuBackend(tmp_path / "nope.onnx")
    path = export_scorer_onnx(*_pair(), K, tmp_path / "model.onnx")
    points, knn = cloud_and_knn(np.random.default_rng(1), 50, K + 1)
    with pytest.raises(St3dError, match="takes k = 8"):
        NumbaCpuBackend(path).run(points, knn)


def test_auto_picks_the_numba_scorer_on_a_cpu_and_onnxruntime_for_other_graphs(tmp_path, monkeypatch):
    monkeypatch.setattr(backends, "onnxruntime_gpu_providers", lambda: [])
    path = export_scorer_onnx(*_pair(), K, tmp_path / "model.onnx")
    picked = select_backend("auto", path, threads=1)
    assert picked.backend.name == "numba-cpu" and "numba" in picked.reason
    assert select_backend("onnxruntime", path, threads=1).backend.name == "onnxruntime-cpu"
    assert select_backend("numba", path, threads=1).backend.name == "numba-cpu"
    toy = select_backend("auto", write_toy_scorer(tmp_path / "toy.onnx", k=3), threads=1)
    assert toy.backend.name == "onnxruntime-cpu" and "not a scorer graph" in toy.reason


_THREADS_SCRIPT = """
import sys, threading, numpy as np
from st3d_edge.runtime.cpu_scorer import NumbaCpuBackend
backend = NumbaCpuBackend(sys.argv[1], threads=2)
rng = np.random.default_rng(0)
points = (rng.standard_normal((2000, 3)) * 0.01).astype(np.float32)
knn = rng.integers(0, 2000, (2000, backend.k)).astype(np.int32)
knn[:, 0] = np.arange(2000)
want = backend.run(points, knn)
out = [None] * 6
def work(i):
    for _ in range(4):
        out[i] = backend.run(points, knn)
threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
for t in threads: t.start()
for t in threads: t.join()
print("same" if all(np.array_equal(o, want) for o in out) else "differ")
"""


def test_threads_sharing_a_backend_do_not_crash_numbas_workqueue_layer(tmp_path):
    """numba's workqueue layer aborts the process on concurrent parallel launches; the kernel
    lock (numba_support.KERNEL_LOCK) serialises them, so a Detector may be shared by threads."""
    import os
    import subprocess
    import sys

    path = export_scorer_onnx(*_pair(), K, tmp_path / "model.onnx")
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    done = subprocess.run(
        [sys.executable, "-c", _THREADS_SCRIPT, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("same")
