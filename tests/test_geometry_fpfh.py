"""FPFH in numpy: the whole-array version against the per-pair loop, and against Open3D."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.geometry import fpfh, fpfh_kernels
from tests.helpers import FLOAT32_SAME_MATH, assert_close


def patch(seed: int, side: int = 14, bump: bool = False) -> np.ndarray:
    """A noisy curved patch in front of the camera (z about 0.4 m), optionally with a bump."""
    rng = np.random.default_rng(seed)
    u, v = np.meshgrid(np.linspace(-0.01, 0.01, side), np.linspace(-0.01, 0.01, side))
    z = 0.4 + 2.0 * (u**2 - v**2) + rng.normal(scale=2e-5, size=u.shape)
    if bump:
        z -= 0.002 * np.exp(-(u**2 + v**2) / (2 * 0.003**2))
    return np.stack([u, v, z], axis=-1).reshape(-1, 3).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_fpfh_matches_the_per_pair_reference(seed):
    points = patch(seed, bump=seed == 1)
    spacing = 0.02 / 13
    fast = fpfh.fpfh(points, 2.5 * spacing, 4 * spacing, feature_nn=30)
    slow = fpfh.fpfh_reference(points, 2.5 * spacing, 4 * spacing, feature_nn=30)
    assert fast.shape == (len(points), 33) and fast.dtype == np.float32
    assert_close(fast, slow, **FLOAT32_SAME_MATH, what="FPFH")


def test_histograms_sum_to_100_per_feature_and_isolated_points_are_zero():
    points = np.vstack([patch(3), [[1.0, 1.0, 1.0]]]).astype(np.float32)
    spacing = 0.02 / 13
    out = fpfh.fpfh(points, 2.5 * spacing, 4 * spacing).reshape(len(points), 3, fpfh.BINS)
    # a point with neighbours: its own SPFH (100 per feature) plus the rescaled neighbour sum (100)
    assert_close(out[:-1].sum(axis=2), np.full((len(points) - 1, 3), 200.0), rtol=1e-4, atol=0.0, what="sums")
    assert not out[-1].any(), "a point with no neighbour in the radius has an empty histogram"


def test_normals_point_towards_the_camera():
    normals = fpfh.estimate_normals(patch(4), 0.003)
    assert (normals[:, 2] < 0).all(), "the camera at the origin looks along +z: normals face -z"
    assert_close(np.linalg.norm(normals, axis=1), np.ones(len(normals)), rtol=1e-9, atol=0.0, what="unit")


def test_matches_open3d_fpfh():
    pytest.importorskip("open3d", reason="Open3D is the train extra's peer baseline")
    from st3d_edge.evaluation.btf import fpfh_descriptors

    points = patch(5, side=20, bump=True)
    spacing = 0.02 / 19
    ours = fpfh.fpfh(points, 2 * spacing, 5 * spacing)
    theirs = fpfh_descriptors(points, 2 * spacing, 5 * spacing)
    # same definitions; PCA eigenvectors and float order may differ in the last bits
    assert_close(ours, theirs, rtol=1e-3, atol=1e-3, what="numpy FPFH vs Open3D")


@pytest.mark.parametrize("seed", [0, 3])
def test_numba_kernels_match_the_numpy_formulation(seed):
    cloud = patch(seed, side=24, bump=True).astype(np.float64)
    cloud = cloud[np.random.default_rng(seed).random(len(cloud)) > 0.15]  # holes: short lists
    radius, nn = 0.004, 20
    idx, dist = fpfh.radius_neighbours(cloud, radius, nn)
    normals = fpfh.estimate_normals(cloud, radius / 2, 8, kernels=False)
    assert_close(
        fpfh_kernels.covariances(cloud, idx),
        fpfh._covariances(cloud, idx, kernels=False),
        rtol=1e-9,
        atol=1e-15,
        what="covariances",
    )
    own = fpfh_kernels.spfh(cloud, normals, idx, fpfh.BINS)
    np.testing.assert_allclose(own, fpfh.spfh(cloud, normals, idx), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(
        fpfh_kernels.weighted_neighbour_sum(own, idx, dist),
        fpfh._weighted_neighbour_sum(own, idx, dist),
        rtol=1e-9,
    )
    fast = fpfh.fpfh(cloud, radius / 2, radius, 8, nn, kernels=True)
    slow = fpfh.fpfh(cloud, radius / 2, radius, 8, nn, kernels=False)
    assert_close(fast, slow, **FLOAT32_SAME_MATH, what="fpfh numba vs numpy")


def test_one_wide_query_gives_each_neighbourhood():
    rng = np.random.default_rng(4)
    cloud = rng.uniform(0, 1, (600, 3))  # irregular: no equidistant neighbours
    wide_idx, wide_dist = fpfh.radius_neighbours(cloud, 0.2, 40)
    for radius, nn in [(0.2, 40), (0.1, 12), (0.05, 40)]:
        idx, _ = fpfh.radius_neighbours(cloud, radius, nn)
        np.testing.assert_array_equal(fpfh.within(wide_idx, wide_dist, radius, nn), idx)


def _grid_clouds():
    rng = np.random.default_rng(5)
    scattered = rng.uniform(-0.02, 0.02, (900, 3)) + [0.0, 0.0, 0.4]
    holes = patch(6, side=30, bump=True).astype(np.float64)
    holes = holes[rng.random(len(holes)) > 0.2]
    duplicated = np.vstack([holes, holes[:50]])  # the point itself must stay column 0
    lines = np.zeros((200, 3))
    lines[:, 0] = np.arange(200) * 1e-3  # a 1D cloud: two of the grid's dimensions are one cell
    clouds = {"scattered": scattered, "holes": holes, "duplicated": duplicated, "line": lines}
    return {name: c.astype(np.float32).astype(np.float64) for name, c in clouds.items()}  # as searched


@pytest.mark.parametrize("name", ["scattered", "holes", "duplicated", "line"])
@pytest.mark.parametrize(("radius", "nn"), [(0.0015, 100), (0.004, 12), (0.02, 40)])
def test_grid_radius_search_matches_the_kdtree(name, radius, nn):
    cloud = _grid_clouds()[name]
    fast_idx, fast_dist = fpfh.radius_neighbours(cloud, radius, nn, grid=True)
    slow_idx, slow_dist = fpfh.radius_neighbours(cloud, radius, nn, grid=False)
    assert fast_idx.shape == slow_idx.shape == (len(cloud), min(nn, len(cloud)))
    np.testing.assert_array_equal(fast_dist, slow_dist)
    assert (fast_idx[:, 0] == np.arange(len(cloud))).all(), "itself first"
    # equidistant neighbours may come in either order, and either may be cut at max_nn: below
    # each row's farthest distance the two agree as sets, and every reported distance is true
    for row in np.flatnonzero(~(fast_idx == slow_idx).all(axis=1)):
        finite = np.isfinite(fast_dist[row])
        last = fast_dist[row][finite].max()
        inner = [set(i[row][(d[row] < last)]) for i, d in ((fast_idx, fast_dist), (slow_idx, slow_dist))]
        assert inner[0] == inner[1]
        j = fast_idx[row][finite]
        np.testing.assert_array_equal(
            np.sqrt(((cloud[j] - cloud[row]) ** 2).sum(axis=1)), fast_dist[row][finite]
        )


def test_a_cloud_too_sparse_for_the_grid_goes_to_the_kdtree():
    from st3d_edge.geometry.grid_radius import grid_radius_neighbours

    cloud = np.array([[0.0, 0.0, 0.0], [1e9, 1e9, 1e9], [1e-12, 0.0, 0.0]])
    assert grid_radius_neighbours(cloud, 1e-9, 3) is None
    idx, dist = fpfh.radius_neighbours(cloud, 1e-9, 3, grid=True)
    assert idx[0].tolist() == [0, 2, 3] and idx[1].tolist() == [1, 3, 3] and np.isinf(dist[1, 1:]).all()
