"""The CUDA geometry kernels against the slow references, on the simulator or a real GPU.

These tests need ``numba.cuda`` to be either the CUDA simulator or a real device. The normal
suite runs this file once more in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``
(tests/test_cuda_simulator.py), so the simulator never leaks into the main process, where a
real GPU must stay visible to the ``gpu`` tests. In the main process without a GPU the
module is skipped: it has run (and must pass) in that subprocess.

Sizes are small on purpose: the simulator runs every GPU thread as a Python thread. Block sizes
are 16 threads (FPS) and 32 (the rest), so every kernel loops over several candidate tiles or
strided shares. The ``gpu`` tests repeat the comparisons at realistic sizes.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from st3d_edge.runtime.geometry_backend import cuda_geometry_available
from tests.helpers import EXACT, FLOAT32_SAME_MATH, assert_close
from tests.test_cuda_references import (
    assert_knn_equal_up_to_ties,
    fps_float32,
    fps_tiled_float32,
    idw_float32,
    knn_ckdtree_self_first,
    knn_float32,
)

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


pytestmark = pytest.mark.skipif(
    not SIMULATED and not cuda_geometry_available(),
    reason="no GPU: this file runs under the CUDA simulator in test_cuda_simulator.py",
)


@pytest.fixture(scope="module")
def geo():
    from st3d_edge.runtime.cuda import CudaGeometry

    return CudaGeometry(threads=32, fps_threads=16)


def _cloud(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)


# ---- FPS -------------------------------------------------------------------------------------


def test_exact_fps_matches_the_references(geo):
    from st3d_edge.geometry.fps import fps_exact

    pts = _cloud(150, 0)
    got = geo.to_host(geo.sample(geo.to_device(pts), 40, "fps-exact"))
    assert_close(got, fps_float32(pts, 40), **EXACT, what="fps vs float32 reference")
    assert_close(got, fps_exact(pts, 40), **EXACT, what="fps vs st3d_edge fps_exact")


def test_fps_is_the_cpu_fps_sampler(geo):
    # both are exact FPS from point 0 (the GPU in float32, the CPU's grid FPS in float64)
    from st3d_edge.geometry.sampling import sampled_in_pick_order
    from tests.geometry_helpers import assert_same_fps

    pts = _cloud(150, 3)
    got = geo.to_host(geo.sample(geo.to_device(pts), 40, "fps"))
    assert_same_fps(pts, got, sampled_in_pick_order(pts, 40, "fps"), "GPU fps vs CPU fps")


def test_fps_with_fewer_points_than_asked_returns_all_in_order(geo):
    pts = _cloud(20, 1)
    for sampler in ("fps", "fps-exact", "fps-tiled"):
        got = geo.to_host(geo.sample(geo.to_device(pts), 25, sampler))
        assert_close(got, np.arange(20), **EXACT, what=sampler)


def test_fps_on_duplicates_breaks_ties_by_lowest_index(geo):
    rng = np.random.default_rng(3)
    base = rng.random((30, 3)).astype(np.float32)
    pts = base[rng.permutation(np.repeat(np.arange(30), 4))]  # every point four times
    got = geo.to_host(geo.sample(geo.to_device(pts), 45, "fps-exact"))
    assert_close(got, fps_float32(pts, 45), **EXACT, what="fps on duplicates")
    assert len(np.unique(pts[got[:30]], axis=0)) == 30  # every distinct point before any copy
    assert len(np.unique(got)) == 45  # and no point chosen twice


@pytest.mark.parametrize("tile_points", [48, 1000])  # several tiles (and a second pass); one tile
def test_tiled_fps_matches_the_tiled_samplers(tile_points):
    from st3d_edge.geometry.tiles import fps_tiled
    from st3d_edge.runtime.cuda import CudaGeometry

    pts = _cloud(160, 4)
    tiled = CudaGeometry(threads=32, fps_threads=16, tile_points=tile_points)
    got = tiled.to_host(tiled.sample(tiled.to_device(pts), 40, "fps-tiled"))
    assert_close(got, fps_tiled_float32(pts, 40, tile_points), **EXACT, what="vs float32 reference")
    assert_close(got, fps_tiled(pts, 40, tile_points=tile_points), **EXACT, what="vs fps_tiled")


# ---- kNN -------------------------------------------------------------------------------------


def test_knn_matches_the_references(geo):
    pts = _cloud(130, 5)
    got = geo.to_host(geo.knn(geo.to_device(pts), 8))
    assert got.dtype == np.int32
    assert_close(got, knn_float32(pts, 8), **EXACT, what="knn vs float32 reference")
    assert_knn_equal_up_to_ties(pts, got, knn_ckdtree_self_first(pts, 8), what="knn vs cKDTree")


def test_knn_with_k_larger_than_a_tile_and_duplicates(geo):
    rng = np.random.default_rng(6)
    pts = rng.random((70, 3)).astype(np.float32)
    pts[40:50] = pts[0]  # eleven copies of one point
    got = geo.to_host(geo.knn(geo.to_device(pts), 40, dtype=np.int64))  # k > 32-thread tile
    assert got.dtype == np.int64
    assert_close(got, knn_float32(pts, 40), **EXACT, what="knn k > tile")


def test_knn_refuses_more_neighbours_than_points(geo):
    from st3d_edge.errors import St3dError

    with pytest.raises(St3dError, match="fewer than k"):
        geo.knn(geo.to_device(_cloud(5, 7)), 8)


# ---- fill, take, image score -----------------------------------------------------------------


def test_fill_matches_the_reference_with_exact_hits(geo):
    pts = _cloud(200, 8)
    idx = fps_float32(pts, 40)
    scores = np.random.default_rng(9).random(40).astype(np.float32)
    got = geo.to_host(geo.fill(pts[idx], scores, geo.to_device(pts)))
    assert_close(got, idw_float32(pts[idx], scores, pts), **FLOAT32_SAME_MATH, what="fill")
    assert_close(got[idx], scores, **EXACT, what="sampled pixels keep their own score")


def test_fill_with_fewer_samples_than_neighbours(geo):
    pts = _cloud(50, 10)
    scores = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    got = geo.to_host(geo.fill(pts[:3], scores, pts))
    assert_close(got, idw_float32(pts[:3], scores, pts), **FLOAT32_SAME_MATH, what="fill m < 4")


def test_fill_averages_coincident_samples(geo):
    pts = _cloud(40, 17)
    samples = pts[[0, 5, 0, 9]]  # two sampled points at the position of pixel 0
    scores = np.array([1.0, 7.0, 3.0, 5.0], dtype=np.float32)
    got = geo.to_host(geo.fill(samples, scores, pts))
    assert_close(got[0], 2.0, **EXACT, what="pixel on two samples")
    assert_close(got, idw_float32(samples, scores, pts), **FLOAT32_SAME_MATH, what="fill")


def test_device_pipeline_matches_the_host_composition(geo):
    pts = _cloud(180, 11)
    cloud = geo.to_device(pts)
    idx = geo.sample(cloud, 36, "fps")
    sampled = geo.take(cloud, idx)
    knn = geo.knn(sampled, 6)
    scores = geo.to_device(np.linspace(0, 1, 36, dtype=np.float32))
    filled = geo.fill(sampled, scores, cloud)
    image = geo.image_score(sampled, scores, knn)

    ref_idx = fps_float32(pts, 36)
    ref_knn = knn_float32(pts[ref_idx], 6)
    host_scores = np.linspace(0, 1, 36, dtype=np.float32)
    assert_close(geo.to_host(idx), ref_idx, **EXACT, what="idx")
    assert_close(geo.to_host(sampled), pts[ref_idx], **EXACT, what="take")
    assert_close(geo.to_host(knn), ref_knn, **EXACT, what="knn")
    ref_fill = idw_float32(pts[ref_idx], host_scores, pts)
    assert_close(geo.to_host(filled), ref_fill, **FLOAT32_SAME_MATH, what="fill")
    ref_image = host_scores[ref_knn].mean(axis=1).max()
    assert_close(image, ref_image, **FLOAT32_SAME_MATH, what="image score")
    ref_image3 = host_scores[ref_knn[:, :3]].mean(axis=1).max()
    image3 = geo.image_score(sampled, scores, knn, 3)
    assert_close(image3, ref_image3, **FLOAT32_SAME_MATH, what="image score, 3 neighbours")


def test_unnamed_uploads_do_not_overwrite_each_other(geo):
    a, b = _cloud(30, 18), _cloud(30, 19)
    dev_a, dev_b = geo.to_device(a), geo.to_device(b)
    assert_close(geo.to_host(dev_a), a, **EXACT, what="first upload")
    assert_close(geo.to_host(dev_b), b, **EXACT, what="second upload")


def test_buffers_are_reused_and_grown(geo):
    from st3d_edge.runtime.cuda import CudaGeometry

    fresh = CudaGeometry(threads=32, fps_threads=16)
    big, small, bigger = _cloud(60, 12), _cloud(40, 13), _cloud(90, 14)
    fresh.knn(fresh.to_device(big), 4)
    held = dict(fresh._buffers)
    out = fresh.to_host(fresh.knn(fresh.to_device(small), 4))
    assert all(fresh._buffers[name] is held[name] for name in held), "a smaller scan reallocated"
    assert_close(out, knn_float32(small, 4), **EXACT, what="knn in a reused buffer")
    fresh.knn(fresh.to_device(bigger), 4)
    assert fresh._buffers["knn-int32"] is not held["knn-int32"], "a larger scan did not grow"


# ---- real GPU, realistic sizes --------------------------------------------------------------


@pytest.mark.gpu
def test_gpu_geometry_at_realistic_sizes():
    from st3d_edge.runtime.cuda import CudaGeometry, device_pointer

    geo_gpu = CudaGeometry()
    pts = _cloud(20000, 15)
    cloud = geo_gpu.to_device(pts)
    assert device_pointer(cloud) != 0
    idx = geo_gpu.to_host(geo_gpu.sample(cloud, 2048, "fps-exact"))
    assert_close(idx, fps_float32(pts, 2048), **EXACT, what="fps 2048 of 20000")
    tiled = geo_gpu.to_host(geo_gpu.sample(cloud, 2048, "fps-tiled"))
    assert_close(tiled, fps_tiled_float32(pts, 2048, 4096), **EXACT, what="tiled fps")
    sampled = pts[idx]
    knn = geo_gpu.to_host(geo_gpu.knn(geo_gpu.to_device(sampled), 32))
    assert_knn_equal_up_to_ties(sampled, knn, knn_ckdtree_self_first(sampled, 32))
    scores = np.random.default_rng(16).random(2048).astype(np.float32)
    filled = geo_gpu.to_host(geo_gpu.fill(sampled, scores, cloud))
    assert_close(filled, idw_float32(sampled, scores, pts), **FLOAT32_SAME_MATH, what="fill")


def test_spacing_check_reads_the_first_knn_rows_from_the_device(geo):
    from st3d_edge.runtime.spacing import scan_spacing

    pts = _cloud(300, 17)
    sampled = geo.to_device(pts)
    knn = geo.knn(sampled, 8)
    rows = geo.to_host(knn[:40])
    assert_close(rows, geo.to_host(knn)[:40], **EXACT, what="first rows")
    assert scan_spacing(geo.to_host(sampled), rows) == pytest.approx(scan_spacing(pts, rows))
