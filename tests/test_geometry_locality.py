"""The locality order of sampled points: a permutation that keeps neighbours near in memory."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.geometry.fpfh import fpfh
from st3d_edge.geometry.knn import knn_indices
from st3d_edge.geometry.locality import BITS, locality_order, morton_codes


def interleave(x: int, y: int, z: int) -> int:
    """The slow reference: bit b of x, y, z goes to bits 3b + 2, 3b + 1, 3b."""
    code = 0
    for b in range(BITS):
        code |= ((x >> b) & 1) << (3 * b + 2) | ((y >> b) & 1) << (3 * b + 1) | ((z >> b) & 1) << (3 * b)
    return code


def test_codes_interleave_the_bits_of_the_cells():
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 1 << BITS, size=(200, 3))
    cells[:2] = [[0, 0, 0], [(1 << BITS) - 1] * 3]  # the quantiles span exactly 0 .. 1023
    points = cells.astype(np.float64)
    points[:2] = [[0.0, 0.0, 0.0], [1023.0, 1023.0, 1023.0]]
    got = morton_codes(np.vstack([points, np.repeat(points[:2], 200, axis=0)]))[:200]
    assert got.tolist() == [interleave(*map(int, c)) for c in cells]


def test_a_permutation_that_brings_neighbours_together():
    rng = np.random.default_rng(1)
    uv = rng.uniform(-1.0, 1.0, (4000, 2))
    cloud = np.c_[uv, 0.2 * np.sin(2.0 * uv[:, 0])]  # a surface, listed in random order
    order = locality_order(cloud)
    assert sorted(order.tolist()) == list(range(len(cloud)))
    gap_before = np.abs(knn_indices(cloud, 8) - np.arange(len(cloud))[:, None]).mean()
    gap_after = np.abs(knn_indices(cloud[order], 8) - np.arange(len(cloud))[:, None]).mean()
    assert gap_after < gap_before / 10


def test_per_point_results_follow_their_points():
    rng = np.random.default_rng(2)
    cloud = np.c_[rng.uniform(0.0, 1.0, (1500, 2)), rng.normal(0.0, 0.01, 1500)]
    order = locality_order(cloud)
    np.testing.assert_array_equal(fpfh(cloud[order], 0.06, 0.1), fpfh(cloud, 0.06, 0.1)[order])


def test_outliers_and_flat_axes_do_not_break_it():
    cloud = np.zeros((50, 3))
    cloud[:, 0] = np.arange(50.0)
    cloud[-1] = [1e9, -1e9, 0.0]  # one far point, a flat z axis
    order = locality_order(cloud)
    assert sorted(order.tolist()) == list(range(50))
    assert order[:49].tolist() == list(range(49))  # x ascending along the curve
    assert locality_order(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(ValueError, match=r"\(m, 3\)"):
        locality_order(np.zeros((4, 2)))
