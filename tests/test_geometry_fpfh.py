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


@pytest.mark.parametrize("feature_nn", [fpfh.FEATURE_NN, 32])
def test_matches_open3d_fpfh(feature_nn):
    pytest.importorskip("open3d", reason="Open3D is the train extra's peer baseline")
    from st3d_edge.evaluation.btf import fpfh_descriptors

    points = patch(5, side=20, bump=True)
    spacing = 0.02 / 19
    ours = fpfh.fpfh(points, 2 * spacing, 5 * spacing, feature_nn=feature_nn)
    theirs = fpfh_descriptors(points, 2 * spacing, 5 * spacing, feature_nn=feature_nn)
    if feature_nn != fpfh.FEATURE_NN:  # the count reaches both: fewer neighbours, other histograms
        assert not np.allclose(ours, fpfh.fpfh(points, 2 * spacing, 5 * spacing), atol=1e-3)
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


def test_neighbour_lists_of_a_wider_knn_query_give_the_same_descriptors():
    from st3d_edge.geometry.knn import knn_and_nearest, knn_indices

    rng = np.random.default_rng(6)
    cloud = patch(6, side=30, bump=True).astype(np.float64)
    cloud = cloud[rng.random(len(cloud)) > 0.2] + rng.normal(0.0, 1e-5, (1, 3))  # holes, no lattice ties
    cloud += rng.normal(0.0, 2e-6, cloud.shape)
    spacing = 0.02 / 29
    knn, nearest = knn_and_nearest(cloud, 12, fpfh.neighbour_count(8, 40))
    assert nearest[0].shape == (len(cloud), 40)
    np.testing.assert_array_equal(knn, knn_indices(cloud, 12))
    for kernels in (True, False):
        shared = fpfh.fpfh(cloud, 2 * spacing, 5 * spacing, 8, 40, kernels=kernels, neighbours=nearest)
        own = fpfh.fpfh(cloud, 2 * spacing, 5 * spacing, 8, 40, kernels=kernels)
        np.testing.assert_array_equal(shared, own)
    small = cloud[:30]  # fewer points than the lists are long: every point is listed
    _, nearest = knn_and_nearest(small, 12, 40)
    assert nearest[0].shape == (30, 30)
    np.testing.assert_array_equal(
        fpfh.fpfh(small, 2 * spacing, 5 * spacing, 8, 40, neighbours=nearest),
        fpfh.fpfh(small, 2 * spacing, 5 * spacing, 8, 40),
    )
    with pytest.raises(ValueError, match="do not cover"):
        fpfh.fpfh(cloud, 2 * spacing, 5 * spacing, 8, 40, neighbours=(nearest[0][:, :20], nearest[1][:, :20]))


def test_normals_by_the_kernels_are_the_numpy_ones():
    cloud = patch(4, side=24, bump=True).astype(np.float64)
    fast = fpfh.estimate_normals(cloud, 0.002, 12, kernels=True)
    slow = fpfh.estimate_normals(cloud, 0.002, 12, kernels=False)
    np.testing.assert_array_equal(fast, slow)


def test_the_kernels_cut_the_lists_in_place_as_within_does():
    # fpfh() hands the kernels the uncut 100-nearest lists with a radius and a count: the same
    # bits as the lists cut by within() first
    cloud = patch(2, side=30, bump=True).astype(np.float64)
    cloud = cloud[np.random.default_rng(2).random(len(cloud)) > 0.2]
    idx, dist = fpfh.radius_neighbours(cloud, np.inf, 40)
    normals = fpfh.estimate_normals(cloud, 0.002, 12, kernels=False)
    for radius, count in [(0.0015, 12), (0.004, 30), (0.004, 40), (1e-9, 40)]:
        cut = fpfh.within(idx, dist, radius, count)
        pairs = [
            (fpfh_kernels.covariances(cloud, idx, dist, radius, count), fpfh_kernels.covariances(cloud, cut)),
            (
                fpfh_kernels.spfh(cloud, normals, idx, fpfh.BINS, dist, radius, count),
                fpfh_kernels.spfh(cloud, normals, cut, fpfh.BINS),
            ),
        ]
        own = pairs[1][1]
        pairs.append(
            (
                fpfh_kernels.weighted_neighbour_sum(own, idx, dist, radius, count),
                fpfh_kernels.weighted_neighbour_sum(own, cut, dist[:, :count]),
            )
        )
        for fast, slow in pairs:
            np.testing.assert_array_equal(fast, slow)


def _lattice(side: int, noise: float, seed: int) -> np.ndarray:
    u, v = np.meshgrid(np.arange(side) * 1e-3, np.arange(side) * 1e-3)
    cloud = np.stack([u, v, np.full(u.shape, 0.4)], axis=-1).reshape(-1, 3)
    return cloud + np.random.default_rng(seed).normal(scale=noise, size=cloud.shape)


@pytest.mark.parametrize(
    "cloud",
    [
        patch(5, side=30, bump=True).astype(np.float64),
        _lattice(24, 0.0, 0),  # a flat lattice: every pair a source/target tie
        _lattice(24, 2e-5, 1),
        np.vstack([patch(6, side=20).astype(np.float64)] * 2),  # every point twice: zero lengths
    ],
    ids=["curved", "flat-lattice", "noisy-lattice", "duplicates"],
)
def test_vector_pair_loop_is_the_pairwise_kernel_bit_for_bit(cloud):
    idx, dist = fpfh.radius_neighbours(cloud, np.inf, 60)
    normals = fpfh.estimate_normals(cloud, 0.0025, 12, kernels=False)
    for radius, count in [(0.004, 40), (np.inf, 60), (1e-9, 40)]:
        fast = fpfh_kernels.spfh(cloud, normals, idx, fpfh.BINS, dist, radius, count)
        slow = fpfh_kernels.spfh(cloud, normals, idx, fpfh.BINS, dist, radius, count, pairwise=True)
        np.testing.assert_array_equal(fast, slow)
        assert radius < 1e-6 or fast.sum() > 0.0


def test_approximate_atan2_stays_well_inside_the_bin_margin():
    # the vector loop trusts a bin when the angle is ANGLE_MARGIN bins away from a boundary:
    # the approximation's error must be far below that (and the pairs near a boundary, which
    # the loop hands to the exact atan2, are exercised by the test above)
    angles = np.linspace(-np.pi, np.pi, 20001)
    worst = 0.0
    for radius in (1e-6, 0.3, 1.0):
        for a in angles:
            y, x = radius * np.sin(a), radius * np.cos(a)
            worst = max(worst, abs(fpfh_kernels.atan2_approx(y, x) - np.arctan2(y, x)))
    assert worst < 3e-7
    assert worst * fpfh.BINS / (2 * np.pi) < fpfh_kernels.ANGLE_MARGIN / 100
