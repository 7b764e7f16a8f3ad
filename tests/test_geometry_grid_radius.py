"""The grid radius search against the kd-tree query it replaces in the FPFH stage."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from st3d_edge.geometry.grid_radius import radius_neighbours_grid  # noqa: E402
from st3d_edge.geometry.kdtree import query_nearest  # noqa: E402


def scan_like(seed: int, m: int = 3000) -> np.ndarray:
    """A wavy height field with a missing patch and a few far outliers (irregular: no ties)."""
    rng = np.random.default_rng(seed)
    uv = rng.uniform(-1.0, 1.0, (m, 2))
    uv = uv[np.hypot(uv[:, 0] - 0.3, uv[:, 1]) > 0.25]
    cloud = np.c_[uv, 2.0 + 0.1 * np.sin(3.0 * uv[:, 0]) * np.cos(2.0 * uv[:, 1])]
    outliers = rng.uniform(-40.0, 40.0, (5, 3))
    return np.vstack([cloud, outliers])


def reference(cloud, radius, max_nn):
    dist, idx = query_nearest(cloud, cloud, min(max_nn, len(cloud)), radius=radius, use_pykdtree=False)
    return idx, dist


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("radius", "max_nn"), [(0.1, 100), (0.1, 12), (0.03, 40), (3.0, 50)])
def test_same_lists_as_the_kd_tree(seed, radius, max_nn):
    cloud = scan_like(seed)
    idx, dist = radius_neighbours_grid(cloud, radius, max_nn)
    ref_idx, ref_dist = reference(cloud, radius, max_nn)
    width = idx.shape[1]  # columns no list fills are left out
    assert width <= ref_idx.shape[1] and (ref_idx[:, width:] == len(cloud)).all()
    assert (ref_idx[:, width - 1] < len(cloud)).any()
    np.testing.assert_array_equal(idx, ref_idx[:, :width])
    np.testing.assert_array_equal(dist, ref_dist[:, :width])  # the same float64 formula, bit for bit
    assert (idx[:, 0] == np.arange(len(cloud))).all()


def test_equidistant_points_give_the_same_sets():
    side = np.arange(12, dtype=np.float64)
    cloud = np.stack(np.meshgrid(side, side, [0.0]), axis=-1).reshape(-1, 3)  # a lattice: ties
    idx, dist = radius_neighbours_grid(cloud, 2.5, 200)
    ref_idx, ref_dist = reference(cloud, 2.5, 200)
    assert idx.shape == (len(cloud), 21)  # a ball of radius 2.5 holds at most 21 lattice points
    assert (ref_idx[:, 21:] == len(cloud)).all()
    ref_idx, ref_dist = ref_idx[:, :21], ref_dist[:, :21]
    np.testing.assert_array_equal(dist, ref_dist)
    for row, ref_row in zip(idx, ref_idx, strict=True):
        assert set(row) == set(ref_row)


def test_small_clouds_duplicates_and_empty_balls():
    cloud = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    idx, dist = radius_neighbours_grid(cloud, 0.5, 10)
    assert idx.shape == (3, 2)  # the longest list
    assert idx[0].tolist() == [0, 1] and idx[1].tolist() == [1, 0]  # itself first
    assert idx[2].tolist() == [2, 3] and np.isinf(dist[2, 1:]).all()
    idx, dist = radius_neighbours_grid(cloud, 0.0, 10)  # strictly inside a zero radius: nothing
    assert (idx == 3).all() and np.isinf(dist).all()
    idx, _ = radius_neighbours_grid(cloud[:1], 1.0, 5)
    assert idx.tolist() == [[0]]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="finite"):
        radius_neighbours_grid(np.array([[0.0, 0.0, np.nan], [1.0, 0.0, 0.0]]), 1.0, 4)
    with pytest.raises(ValueError, match=r"\(m, 3\)"):
        radius_neighbours_grid(np.zeros((0, 3)), 1.0, 4)
