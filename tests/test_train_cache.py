from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.errors import St3dError
from st3d_edge.geometry.fps import fps_bucket
from st3d_edge.geometry.knn import knn_bruteforce
from st3d_edge.geometry.sampling import sample_indices
from st3d_edge.geometry.scale import scale_s
from st3d_edge.train.cache import CloudSet, cache_path, cached_cloud, file_identity, load_cloud, prepare_cloud
from tests.helpers import EXACT, FLOAT64_SOLVER, assert_close


def _cloud(seed: int, count: int = 300) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, 3)).astype(np.float32)


def test_prepared_cloud_matches_obvious_computation():
    raw = _cloud(0)
    cloud = prepare_cloud(raw, 64, 6, "fps-exact")
    expected_points = raw[sample_indices(raw, 64, "fps-exact")]
    assert_close(cloud.points, expected_points, **EXACT, what="sampled points")
    # neighbour sets against the brute-force kNN (random floats: no ties)
    assert (cloud.knn[:, 0] == np.arange(64)).all()
    assert_close(
        np.sort(cloud.knn, axis=1), np.sort(knn_bruteforce(expected_points, 6), axis=1), **EXACT, what="knn"
    )
    assert cloud.distance_count == 64 * 5


def test_cache_hit_miss_and_key(tmp_path):
    calls = []

    def make(seed=1):
        calls.append(seed)
        return _cloud(seed)

    settings = {"kind": "scene", "index": 1}
    first = cached_cloud(tmp_path, settings, make, 64, 6, "fps")
    again = cached_cloud(tmp_path, settings, make, 64, 6, "fps")
    assert first == again and calls == [1]  # computed once
    other = cached_cloud(tmp_path, settings, make, 32, 6, "fps")  # another n is another entry
    assert other != first and calls == [1, 1]
    assert cache_path(tmp_path, settings, 64, 6, "fps-exact") != first
    assert len(load_cloud(other).points) == 32
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_the_key_names_what_samples_not_only_the_sampler_name(tmp_path, monkeypatch):
    # "fps" is the grid FPS with numba and fpsample's bucket FPS without: two caches, never mixed
    from st3d_edge import numba_support
    from st3d_edge.geometry import sampling

    settings = {"kind": "scene", "index": 1}
    with_numba = cache_path(tmp_path, settings, 64, 6, "fps")
    monkeypatch.setattr(numba_support, "numba_available", lambda: False)
    assert sampling.implementation("fps") == "fps-bucket"
    assert cache_path(tmp_path, settings, 64, 6, "fps") != with_numba
    cloud = _cloud(4)
    assert sampling.sampled_in_pick_order(cloud, 20).tolist() == fps_bucket(cloud, 20).tolist()


def test_scale_from_cached_sums_equals_geometry_scale(tmp_path):
    clouds = [prepare_cloud(_cloud(seed, 100 + 50 * seed), 80, 5, "fps") for seed in range(3)]
    paths = [
        cached_cloud(tmp_path, {"kind": "x", "i": i}, lambda i=i: _cloud(i, 100 + 50 * i), 80, 5, "fps")
        for i in range(3)
    ]
    cached = CloudSet(paths, memory_budget=0)
    assert_close(cached.scale(), scale_s((c.points, c.knn) for c in clouds), **FLOAT64_SOLVER, what="s")
    assert_close(cached[2].points, clouds[2].points, **EXACT, what="reloaded cloud")


def test_errors_name_the_source(tmp_path):
    with pytest.raises(St3dError, match="scan-7.tiff: only 5 valid points; the model needs at least k"):
        prepare_cloud(_cloud(0, 5), 64, 8, "fps", source="scan-7.tiff")
    bad = tmp_path / "scene-x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(St3dError, match=r"scene-x\.npz: damaged cache entry"):
        load_cloud(bad)


def test_file_identity_changes_when_the_file_changes(tmp_path):
    path = tmp_path / "a.tiff"
    path.write_bytes(b"1234")
    before = file_identity(path)
    path.write_bytes(b"123456")
    assert file_identity(path) != before
