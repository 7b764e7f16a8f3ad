"""The grid kNN (the kNN graph, FPFH's neighbours) against the kd-tree and the brute-force
reference; its block search against its ring search."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.geometry.kdtree import PYKDTREE_MAX_K, nearest_in_cloud, query_nearest
from st3d_edge.geometry.knn import knn_bruteforce
from st3d_edge.numba_support import numba_available
from tests.geometry_helpers import assert_same_neighbours_up_to_ties, height_field

pytestmark = pytest.mark.skipif(not numba_available(), reason="the grid kNN is a numba kernel")


@pytest.fixture(params=["block", "ring"])
def method(request):
    return request.param


def _grid_knn(points, k, method="block"):
    from st3d_edge.geometry.grid_knn import grid_knn

    return grid_knn(points, k, method)


@pytest.mark.parametrize("seed", range(3))
def test_same_neighbours_as_the_kd_tree_on_a_scan_like_surface(seed, method):
    rng = np.random.default_rng(seed)
    points = height_field(int(rng.integers(800, 4000)), seed=seed)
    k = int(rng.integers(1, 120))
    fast = _grid_knn(points, k, method)
    assert fast[0].dtype == np.float64 and fast[1].dtype == np.int64 and fast[1].shape == (len(points), k)
    assert_same_neighbours_up_to_ties(fast, query_nearest(points, points, k + 1, use_pykdtree=False))


def test_ties_go_to_the_lower_index_as_in_the_brute_force_reference(method):
    # an integer lattice: equidistant neighbours everywhere, so the order of ties shows
    lattice = np.stack(np.meshgrid(*(np.arange(n) for n in (9, 7, 3)), indexing="ij"), -1).reshape(-1, 3)
    points = lattice.astype(np.float32) * 0.001
    for k in (1, 6, 27, 60):
        _, idx = _grid_knn(points, k, method)
        assert np.array_equal(idx, knn_bruteforce(points, k)), k


def test_far_outliers_and_duplicates(method):
    # points beyond the grid's central quantiles sit in unbounded border cells; duplicates tie at 0
    surface = height_field(1500, seed=4)
    points = np.concatenate([surface, surface[:20], [[3.0, 3.0, 3.0], [-2.0, 0.0, 0.5]]]).astype(np.float32)
    k = 70
    fast = _grid_knn(points, k, method)
    dist, _ = query_nearest(points, points, k, use_pykdtree=False)
    assert np.array_equal(fast[0], dist)  # same float64 arithmetic, the same distances bit for bit
    recomputed = np.linalg.norm(
        points[fast[1]].astype(np.float64) - points[:, None].astype(np.float64), axis=2
    )
    assert np.allclose(recomputed, fast[0], rtol=1e-12, atol=1e-15)
    assert all(len(set(row)) == k for row in fast[1])


def test_every_point_when_k_is_the_cloud_size(method):
    points = height_field(60, seed=1)
    dist, idx = _grid_knn(points, len(points), method)
    assert np.array_equal(np.sort(idx, axis=1), np.tile(np.arange(len(points)), (len(points), 1)))
    assert np.all(np.diff(dist, axis=1) >= 0)
    with pytest.raises(ValueError, match="k must be"):
        _grid_knn(points, len(points) + 1, method)


def test_nearest_in_cloud_takes_the_grid_past_pykdtree_and_keeps_the_radius_rule():
    points = height_field(3000, seed=2)
    k = PYKDTREE_MAX_K + 20
    radius = 0.003
    grid = nearest_in_cloud(points, k, radius=radius)
    tree = nearest_in_cloud(points, k, radius=radius, use_grid=False)
    assert np.array_equal(grid[0], tree[0])  # inf beyond the radius on both
    assert np.isinf(grid[0]).any() and np.all(grid[1][np.isinf(grid[0])] == len(points))
    inside = np.isfinite(grid[0])
    assert np.array_equal(
        np.sort(np.where(inside, grid[1], -1), axis=1), np.sort(np.where(inside, tree[1], -1), axis=1)
    )


@pytest.mark.parametrize("shape", ["plate", "line"])
def test_flat_clouds_get_cells_of_the_planned_size_and_the_same_neighbours(shape, method):
    # a plate seen head-on with quantised depth has one z value; its cells used to come out a
    # hair wide (about a point per cell), which made the ring walk take seconds
    from st3d_edge.geometry.grid_index import grid_cells
    from st3d_edge.geometry.grid_knn import POINTS_PER_CELL

    if shape == "plate":
        u, v = np.meshgrid(np.arange(60), np.arange(50), indexing="ij")
        points = np.stack([u.ravel() * 4e-4, v.ravel() * 4e-4, np.full(u.size, 0.3)], axis=1)
    else:
        points = np.stack([np.arange(2000) * 1e-4, np.zeros(2000), np.full(2000, 0.3)], axis=1)
    points = points.astype(np.float32)
    _, _, _, cid = grid_cells(points.astype(np.float64), POINTS_PER_CELL)
    per_cell = len(points) / len(np.unique(cid))
    assert POINTS_PER_CELL / 4 <= per_cell <= 2 * POINTS_PER_CELL
    k = 60
    fast = _grid_knn(points, k, method)
    assert np.array_equal(fast[0], query_nearest(points, points, k, use_pykdtree=False)[0])
    assert np.array_equal(fast[1], knn_bruteforce(points, k))  # ties everywhere: by index


@pytest.mark.parametrize("seed", range(4))
def test_the_block_search_equals_the_ring_search_bit_for_bit(seed):
    # sparse patches, a hole, far outliers and duplicates: points whose k nearest leave their
    # 3 x 3 x 3 block go to the ring search inside the block kernel; the rest are ranked in it
    rng = np.random.default_rng(seed)
    surface = height_field(int(rng.integers(2000, 6000)), seed=seed)
    sparse = surface[:200] + rng.normal(0, 0.02, (200, 3))
    keep = np.linalg.norm(surface[:, :2] - surface[0, :2], axis=1) > 0.05
    points = np.concatenate([surface[keep], sparse, surface[:30], [[2.0, 2.0, 2.0]]]).astype(np.float32)
    for k in (8, int(rng.integers(9, 64)), 100, 150):
        block = _grid_knn(points, k, "block")
        ring = _grid_knn(points, k, "ring")
        assert np.array_equal(block[0], ring[0]) and np.array_equal(block[1], ring[1]), k


def test_unknown_method():
    with pytest.raises(ValueError, match="method"):
        _grid_knn(height_field(50, seed=0), 4, "heap")
