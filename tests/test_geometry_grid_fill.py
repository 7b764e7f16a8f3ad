"""The fill through the pixel grid against the kd-tree IDW it replaces on organized scans."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.geometry import grid_fill
from st3d_edge.geometry.fill import idw_fill
from st3d_edge.geometry.fps import fps_exact
from st3d_edge.geometry.grid_fill import PixelGrid, grid_idw_fill, nearest_sampled_pixel
from st3d_edge.geometry.knn import knn_indices
from tests.helpers import FLOAT32_SAME_MATH, assert_close
from tests.runtime_fixtures import organized_cloud, toy_scan


def _case(xyz: np.ndarray, n: int, k: int, seed: int = 0):
    """(samples, scores, points, grid) of a scan reduced to n points by FPS, kNN with k."""
    scan = toy_scan(xyz)
    idx = fps_exact(scan.points, n)
    samples = scan.points[idx]
    knn = knn_indices(samples, min(k, len(samples)))
    scores = np.random.default_rng(seed).gamma(2.0, size=len(samples)).astype(np.float32)
    return samples, scores, scan.points, PixelGrid(scan.valid.shape, scan.pixels, idx, knn)


def _compare(samples, scores, points, grid) -> tuple[float, float]:
    """(max |fast - exact| / score range, fraction of pixels that differ beyond rounding)."""
    fast = grid_idw_fill(samples, scores, points, grid)
    exact = idw_fill(samples, scores, points)
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    diff = np.abs(fast.astype(np.float64) - exact)
    score_range = max(float(np.ptp(scores)), 1e-12)
    return float(diff.max() / score_range), float((diff > 1e-6 * score_range).mean())


def _stepped(height: int, width: int, seed: int) -> np.ndarray:
    """A surface with a deep step and a hole: the image neighbour is often not the 3D one."""
    xyz = organized_cloud(height, width, seed=seed)
    xyz[:, width // 2 :, 2] += 0.3 * (xyz[:, width // 2 :, 2] != 0)
    xyz[height // 3 : height // 2, width // 4 : width // 3] = 0.0
    return xyz


@pytest.mark.parametrize("seed", range(4))
def test_grid_fill_equals_the_kd_tree_fill(seed):
    rng = np.random.default_rng(seed)
    height, width = int(rng.integers(30, 60)), int(rng.integers(30, 60))
    xyz = _stepped(height, width, seed) if seed % 2 else organized_cloud(height, width, seed=seed)
    n = int(rng.integers(60, 300))
    worst, differing = _compare(*_case(xyz, n, k=int(rng.choice([8, 16, 32])), seed=seed))
    assert worst <= 1e-6 and differing == 0.0, (worst, differing)


def test_both_kernel_outcomes_are_exercised(monkeypatch):
    """On a stepped scan some pixels are certified and some go to the kd-tree."""
    samples, scores, points, grid = _case(_stepped(48, 40, 1), 200, k=16)
    calls = []

    def counting(sample_points, sample_scores, query_points, neighbours, power):
        calls.append(len(query_points))
        return idw_fill(sample_points, sample_scores, query_points, neighbours, power)

    monkeypatch.setattr(grid_fill, "idw_fill", counting)
    grid_idw_fill(samples, scores, points, grid)
    assert len(calls) == 1 and 0 < calls[0] < len(points) // 2, calls


def test_holes_tiny_scans_and_few_neighbours():
    # a scan mostly missing: two islands far apart in the image
    xyz = np.zeros((40, 40, 3), dtype=np.float32)
    xyz[2:8, 3:9] = organized_cloud(6, 6, seed=4, bump=False) + [0.0, 0.0, 0.1]
    xyz[30:37, 28:38] = organized_cloud(7, 10, seed=5, bump=False)
    for n, k in [(40, 8), (5, 4), (4, 3), (1, 1)]:
        worst, differing = _compare(*_case(xyz, n, k))
        assert worst <= 1e-6 and differing == 0.0, (n, k, worst, differing)
    samples, scores, points, grid = _case(xyz, 40, 8)
    empty = PixelGrid(grid.shape, np.zeros((0, 2), np.int32), grid.sample_idx, grid.knn)
    assert grid_idw_fill(samples, scores, np.zeros((0, 3)), empty).shape == (0,)
    with pytest.raises(ValueError, match="pixels"):
        grid_idw_fill(samples, scores, points[:-1], grid)


def test_pixels_on_sampled_points_keep_their_score():
    samples, scores, points, grid = _case(organized_cloud(24, 30, seed=2), 120, k=10)
    filled = grid_idw_fill(samples, scores, points, grid)
    assert_close(filled[grid.sample_idx], scores, **FLOAT32_SAME_MATH, what="sampled pixels")
    # duplicate sampled positions: the mean of their scores, as idw_fill
    twin = samples.copy()
    twin[1] = twin[0]
    knn = knn_indices(twin, 10)
    points2 = points.copy()
    points2[grid.sample_idx[1]] = points2[grid.sample_idx[0]]
    grid2 = PixelGrid(grid.shape, grid.pixels, grid.sample_idx, knn)
    both = grid_idw_fill(twin, scores, points2, grid2)
    assert both[grid.sample_idx[0]] == pytest.approx((scores[0] + scores[1]) / 2, rel=1e-6)
    # where the twins tie for 4th nearest either may be taken: compare the other pixels
    from scipy.spatial import cKDTree

    dist = cKDTree(twin).query(points2, k=5)[0]
    clear = dist[:, 3] != dist[:, 4]
    assert clear.mean() > 0.9
    expected = idw_fill(twin, scores, points2)
    assert_close(both[clear], expected[clear], **FLOAT32_SAME_MATH, what="duplicates")


def test_without_numba_the_kd_tree_fills(monkeypatch):
    samples, scores, points, grid = _case(organized_cloud(20, 24, seed=3), 80, k=10)
    monkeypatch.setattr(grid_fill, "_kernel", lambda: None)
    assert np.array_equal(grid_idw_fill(samples, scores, points, grid), idw_fill(samples, scores, points))


def test_nearest_sampled_pixel_by_brute_force():
    rng = np.random.default_rng(0)
    sampled = np.unique(rng.integers(0, [13, 17], size=(20, 2)), axis=0)
    seeds = nearest_sampled_pixel((13, 17), sampled)
    rows, cols = np.mgrid[0:13, 0:17]
    d2 = (rows[..., None] - sampled[:, 0]) ** 2 + (cols[..., None] - sampled[:, 1]) ** 2
    got = d2[rows, cols, seeds]
    assert seeds.shape == (13, 17) and np.array_equal(got, d2.min(axis=-1))


@pytest.mark.parametrize("seed", range(3))
def test_propagated_seeds_are_the_nearest_sampled_pixels(seed):
    # the raster passes against the brute force (and the exact transform): each pixel gets a
    # sampled pixel, nearly always a nearest one (the fill's certificate covers the rest)
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(20, 70)), int(rng.integers(20, 70)))
    sampled = np.unique(rng.integers(0, shape, size=(int(rng.integers(1, 90)), 2)), axis=0)
    seeds = grid_fill.propagated_seeds(shape, sampled)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    d2 = (rows[..., None] - sampled[:, 0]) ** 2 + (cols[..., None] - sampled[:, 1]) ** 2
    assert seeds.shape == shape and seeds.min() >= 0 and seeds.max() < len(sampled)
    got, nearest = d2[rows, cols, seeds], d2.min(axis=-1)
    assert np.mean(got == nearest) >= 0.99
    exact = nearest_sampled_pixel(shape, sampled)
    assert np.array_equal(d2[rows, cols, exact], nearest)


def test_certified_values_are_the_kd_tree_formula_bit_for_bit():
    # float64 IDW over the kd-tree's distances, weights 1 / d**2 as numpy computes them
    from scipy.spatial import cKDTree

    from st3d_edge.geometry._grid_fill_kernel import fill_from_candidates

    samples, scores, points, grid = _case(organized_cloud(120, 120, seed=5), 1500, k=16)
    seed_image = nearest_sampled_pixel(grid.shape, grid.pixels[grid.sample_idx])
    out, certain = np.empty(len(points)), np.empty(len(points), dtype=bool)
    rows = np.ascontiguousarray(grid.knn, dtype=np.int32)
    values = scores.astype(np.float64)
    fill_from_candidates(points, grid.pixels, seed_image, samples, values, rows, 4, 2.0, out, certain)
    dist, idx = cKDTree(samples).query(points, k=5)
    with np.errstate(divide="ignore", invalid="ignore"):  # pixels on samples: not compared
        weight = 1.0 / dist[:, :4] ** 2.0
        want = (weight * values[idx[:, :4]]).sum(axis=1) / weight.sum(axis=1)
    clear = certain & (dist[:, 0] > 0) & (dist[:, 3] < dist[:, 4])
    assert clear.mean() > 0.8
    assert np.array_equal(out[clear], want[clear])
