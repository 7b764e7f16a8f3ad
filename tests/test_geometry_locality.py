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


def test_far_outliers_do_not_squeeze_the_rest_into_one_code():
    rng = np.random.default_rng(3)
    cloud = np.zeros((4000, 3))
    cloud[:, 0] = rng.permutation(4000).astype(np.float64)  # a line along x, flat in y and z
    cloud[:3] = [[1e9, -1e9, 5e8], [-1e9, 1e9, -5e8], [3e9, 0.0, 0.0]]  # far points
    order = locality_order(cloud)
    assert sorted(order.tolist()) == list(range(len(cloud)))
    inner = [i for i in order.tolist() if i >= 3]
    x = cloud[inner, 0]
    # clamped quantiles keep the line spread over the codes: listed by x, up to points that
    # share one of the 1024 codes (about four per code here), which keep their input order
    assert (np.diff(x) > -8.0).all() and np.corrcoef(x, np.arange(len(x)))[0, 1] > 0.999


def test_bad_input_is_refused():
    assert locality_order(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(ValueError, match=r"\(m, 3\)"):
        locality_order(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="finite"):
        locality_order(np.array([[0.0, 0.0, 0.0], [np.nan, 1.0, 2.0]]))
