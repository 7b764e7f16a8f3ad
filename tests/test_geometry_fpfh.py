"""FPFH in numpy: the whole-array version against the per-pair loop, and against Open3D."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.geometry import fpfh
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
