"""FPS: the numpy reference by hand, fpsample's bucket FPS against it, invariants."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.geometry.fps import distinct_completion, fps_bucket, fps_exact
from st3d_edge.geometry.grid_fps import fps_grid
from st3d_edge.geometry.locality import locality_order
from st3d_edge.geometry.sampling import covering_radius, sample_indices, sampled_in_pick_order
from tests.geometry_helpers import assert_same_fps, height_field

# ---- tier 1: hand-worked ---------------------------------------------------------------


def _line(xs) -> np.ndarray:
    return np.array([[x, 0.0, 0.0] for x in xs], dtype=np.float32)


def test_exact_on_a_line_by_hand():
    # from 0: farthest is 10 (idx 4); then 3 (distance 3); then 1 and 2 tie at 1 -> lower index
    assert fps_exact(_line([0, 1, 2, 3, 10, 10]), 5).tolist() == [0, 4, 3, 1, 2]
    assert fps_exact(_line([0, 1, 2, 3, 10]), 3, start=2).tolist() == [2, 4, 0]


def test_square_corners_first():
    square = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0.5, 0.5, 0]], np.float32)
    picked = fps_exact(square, 4)
    assert picked[0] == 0 and picked[1] == 3  # the opposite corner
    assert set(picked[2:].tolist()) == {1, 2}


@pytest.mark.parametrize("sampler", [fps_exact, fps_bucket, fps_grid])
def test_small_clouds_return_everything_in_order(sampler):
    cloud = _line([3, 1, 2])
    assert sampler(cloud, 3).tolist() == [0, 1, 2]
    assert sampler(cloud, 10).tolist() == [0, 1, 2]
    assert sampler(cloud, 0).tolist() == []
    assert sampler(np.zeros((0, 3), np.float32), 5).tolist() == []
    assert sampler(cloud, 2).dtype == np.int64


@pytest.mark.parametrize("sampler", [fps_exact, fps_bucket, fps_grid])
def test_bad_shapes_and_counts(sampler):
    with pytest.raises(ValueError, match="shape"):
        sampler(np.zeros((4, 2), np.float32), 2)
    with pytest.raises(ValueError, match=">= 0"):
        sampler(np.zeros((4, 3), np.float32), -1)
    with pytest.raises(ValueError, match="start"):
        sampler(np.random.default_rng(0).random((4, 3)), 2, start=7)


def test_identical_points_give_distinct_indices():
    same = np.ones((20, 3), np.float32)
    assert fps_exact(same, 6).tolist() == [0, 1, 2, 3, 4, 5]
    assert sorted(fps_bucket(same, 6).tolist()) == [0, 1, 2, 3, 4, 5]


def test_distinct_completion_replaces_repeats_by_lowest_unchosen():
    assert distinct_completion([4, 2, 4, 4], 6).tolist() == [4, 2, 0, 1]
    assert distinct_completion([1, 0, 2], 3).tolist() == [1, 0, 2]


def test_duplicates_bucket_covers_like_exact():
    rng = np.random.default_rng(3)
    cloud = np.repeat(rng.random((7, 3)).astype(np.float32), 5, axis=0)
    for n in (5, 7, 12):
        fast = fps_bucket(cloud, n)
        assert len(np.unique(fast)) == n
        assert covering_radius(cloud, fast) == pytest.approx(covering_radius(cloud, fps_exact(cloud, n)))


def test_sampler_names_dispatch():
    cloud = np.random.default_rng(0).random((50, 3)).astype(np.float32)
    assert sampled_in_pick_order(cloud, 10, "fps-exact").tolist() == fps_exact(cloud, 10).tolist()
    assert sampled_in_pick_order(cloud, 10).tolist() == fps_grid(cloud, 10).tolist()
    assert len(sample_indices(cloud, 10, "fps-tiled")) == 10
    # the same samples, listed in locality order
    picked = fps_grid(cloud, 10)
    listed = sample_indices(cloud, 10)
    assert listed.tolist() == picked[locality_order(cloud[picked])].tolist()
    assert sorted(listed.tolist()) == sorted(picked.tolist())
    with pytest.raises(ValueError, match="fps-tiled"):
        sample_indices(cloud, 10, "random")


def test_covering_radius_by_hand():
    cloud = _line([0, 1, 2, 3, 10])
    assert covering_radius(cloud, [0, 4]) == pytest.approx(3.0)
    assert covering_radius(cloud, []) == float("inf")
    assert covering_radius(np.zeros((0, 3)), []) == 0.0


# ---- tier 2: bucket FPS against the reference ------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_bucket_is_exact_fps_from_its_first_point(seed):
    rng = np.random.default_rng(seed)
    n_points = int(rng.integers(40, 3000))
    n = int(rng.integers(1, n_points))
    cloud = (rng.random((n_points, 3)) * rng.uniform(0.01, 10)).astype(np.float32)
    fast = fps_bucket(cloud, n, start=int(rng.integers(0, n_points)))
    # fpsample reads start in its own tree order (see fps_bucket), so compare from fast[0]
    reference = fps_exact(cloud, n, start=int(fast[0]))
    assert_same_fps(cloud, fast, reference, f"seed {seed}")
    # documented factor: exact, so the covering radius is the reference's
    assert covering_radius(cloud, fast) <= covering_radius(cloud, reference) * (1 + 1e-6)


def test_bucket_is_deterministic():
    cloud = np.random.default_rng(1).random((2000, 3)).astype(np.float32)
    assert fps_bucket(cloud, 300).tolist() == fps_bucket(cloud, 300).tolist()


# ---- tier 2: grid FPS against the reference --------------------------------------------


def _clouds_with_ties(rng):
    base = rng.random((60, 3)).astype(np.float32)
    return {
        "duplicates": np.repeat(base, 5, axis=0)[rng.permutation(300)],
        "one point": np.ones((40, 3), np.float32),
        "integer lattice": rng.integers(0, 5, (400, 3)).astype(np.float32),
        "a plane": np.c_[rng.random((500, 2)), np.zeros(500)].astype(np.float32),
    }


@pytest.mark.parametrize("seed", range(6))
def test_grid_is_exact_fps_from_the_same_first_point(seed):
    rng = np.random.default_rng(seed)
    n_points = int(rng.integers(40, 4000))
    n = int(rng.integers(1, n_points))
    cloud = (rng.random((n_points, 3)) * rng.uniform(0.01, 10, 3)).astype(np.float32)
    start = int(rng.integers(0, n_points))
    fast = fps_grid(cloud, n, start=start)
    assert fast[0] == start
    assert_same_fps(cloud, fast, fps_exact(cloud, n, start=start), f"seed {seed}")


# the default cell size for these small clouds, and the coarsest one large scans get
CELL_SIZES = [None, 64]


@pytest.mark.parametrize("cell_points", CELL_SIZES)
def test_grid_is_exact_fps_on_a_scan_like_surface(cell_points):
    cloud = height_field(20000, seed=3)
    fast = fps_grid(cloud, 3000, cell_points=cell_points)
    assert_same_fps(cloud, fast, fps_exact(cloud, 3000), "height field")


@pytest.mark.parametrize("cell_points", CELL_SIZES)
def test_grid_is_exact_with_far_outliers(cell_points):
    # the grid spans the central quantiles; outliers sit in unbounded border cells
    cloud = height_field(8000, seed=2)
    far = np.array([[1000, 0, 0], [-500, 3, 0], [0, 0, 700], [0, -900, 0], [2, 2, -2]], np.float32)
    cloud[:5] += far
    fast = fps_grid(cloud, 1500, cell_points=cell_points)
    assert_same_fps(cloud, fast, fps_exact(cloud, 1500), "outliers")


@pytest.mark.parametrize("cell_points", CELL_SIZES)
def test_grid_breaks_ties_like_the_reference(cell_points):
    # exact ties everywhere: the reference takes the lowest index, and so must the grid
    for name, cloud in _clouds_with_ties(np.random.default_rng(7)).items():
        n = len(cloud) - 3
        fast = fps_grid(cloud, n, start=5, cell_points=cell_points)
        assert fast.tolist() == fps_exact(cloud, n, start=5).tolist(), name


def test_larger_clouds_get_coarser_cells():
    from st3d_edge.geometry.grid_fps import points_per_cell

    assert points_per_cell(5000) == 16 and points_per_cell(300_000) == 30
    assert points_per_cell(613_348) == 61 and points_per_cell(10_000_000) == 64


def test_grid_rejects_non_finite_points():
    cloud = np.random.default_rng(8).random((50, 3)).astype(np.float32)
    cloud[7, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fps_grid(cloud, 10)


# ---- tier 3: invariants ----------------------------------------------------------------


def test_exact_prefix_property():
    cloud = np.random.default_rng(2).random((400, 3)).astype(np.float32)
    assert fps_exact(cloud, 30).tolist() == fps_exact(cloud, 100)[:30].tolist()


def test_exact_translation_invariance():
    # integer coordinates stay exact under an integer shift, so no rounding can break ties
    cloud = np.random.default_rng(4).integers(0, 1000, (300, 3)).astype(np.float32)
    assert fps_exact(cloud, 50).tolist() == fps_exact(cloud + 5000.0, 50).tolist()


def test_exact_permutation_equivariance():
    rng = np.random.default_rng(5)
    cloud = rng.random((300, 3)).astype(np.float32)
    perm = rng.permutation(300)
    # point i of the shuffled cloud is point perm[i] of the original
    shuffled = fps_exact(cloud[perm], 60, start=int(np.flatnonzero(perm == 0)[0]))
    assert perm[shuffled].tolist() == fps_exact(cloud, 60).tolist()


def test_bucket_translation_keeps_covering_radius():
    cloud = np.random.default_rng(6).random((1500, 3)).astype(np.float32)
    here = covering_radius(cloud, fps_bucket(cloud, 200))
    moved = cloud + np.float32(3.0)
    assert covering_radius(moved, fps_bucket(moved, 200)) == pytest.approx(here, rel=0.05)
