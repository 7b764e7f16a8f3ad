"""The ``fps-split`` sampler against a numpy reference of what it promises: exact FPS of each
half, merged by pick distance."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.geometry import split_fps
from st3d_edge.geometry.fps import fps_exact
from st3d_edge.geometry.grid_fps import fps_grid
from st3d_edge.geometry.sampling import covering_radius, implementation, sample_indices, sampled_in_pick_order
from st3d_edge.geometry.split_fps import fps_split, halves
from tests.geometry_helpers import height_field


def _reach(cloud: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Each pick's squared distance (float64) to the picks before it; inf for the first."""
    cloud = cloud.astype(np.float64)
    out = np.full(len(picks), np.inf)
    for i in range(1, len(picks)):
        step = cloud[picks[:i]] - cloud[picks[i]]
        out[i] = np.einsum("ij,ij->i", step, step).min()
    return out


def _reference(cloud: np.ndarray, n: int) -> np.ndarray:
    """The promise, slowly: the numpy reference FPS of each half as far as n picks (from the
    half's lowest index), merged by pick distance, the first half first among equals."""
    merged = []
    for half, part in enumerate(halves(cloud)):
        # every point of a half that n covers, in FPS order (fps_exact lists them in index order)
        picks = fps_exact(cloud[part], min(n, len(part) - 1))
        picks = np.concatenate([picks, np.setdiff1d(np.arange(len(part)), picks)[: n - len(picks)]])
        reach = _reach(cloud[part], picks)
        merged += [(-reach[i], half, i, int(part[picks[i]])) for i in range(len(picks))]
    return np.array([entry[3] for entry in sorted(merged)[:n]], dtype=np.int64)


def test_halves_cut_the_longest_axis_at_its_median_ties_by_index():
    cloud = np.zeros((7, 3), np.float32)
    cloud[:, 1] = [5, 1, 3, 3, 9, 3, 0]  # y is the longest axis; three points tie at the median
    first, second = halves(cloud)
    assert first.tolist() == [1, 2, 6] and second.tolist() == [0, 3, 4, 5]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [2, 7, 40, 150, 295])
def test_split_is_the_merge_of_the_halves_exact_fps(seed, n):
    cloud = np.random.default_rng(seed).random((300, 3)).astype(np.float32)
    assert fps_split(cloud, n).tolist() == _reference(cloud, n).tolist()


def test_a_half_that_needs_more_than_its_share_is_sampled_again(monkeypatch):
    # the same number of points on each side of the cut, but one side spread over a large square
    # and the other packed in a small one: nearly every pick lies on the spread side, past its
    # share of n, so that half is sampled again with a larger quota
    rng = np.random.default_rng(7)
    spread = rng.random((400, 3)) * [1.0, 1.0, 0.01]
    packed = rng.random((400, 3)) * [0.05, 1.0, 0.01] + [1.1, 0.0, 0.0]
    cloud = np.vstack([spread, packed]).astype(np.float32)
    calls = []
    real = split_fps.fps_grid_reach
    monkeypatch.setattr(split_fps, "fps_grid_reach", lambda c, n: calls.append(n) or real(c, n))
    got = fps_split(cloud, 200)
    assert len(calls) > 2  # the spread half was sampled more than once
    assert got.tolist() == _reference(cloud, 200).tolist()
    assert np.count_nonzero(got < 400) > 150


def test_one_worker_gives_the_same_samples():
    cloud = height_field(6000, seed=2)
    assert fps_split(cloud, 900, workers=1).tolist() == fps_split(cloud, 900, workers=2).tolist()


def test_covers_like_exact_fps_on_a_scan_like_surface():
    cloud = height_field(20000, seed=1)
    split, exact = fps_split(cloud, 2000), fps_grid(cloud, 2000)
    assert len(np.unique(split)) == 2000
    assert covering_radius(cloud, split) <= 1.1 * covering_radius(cloud, exact)


def test_small_clouds_duplicates_and_bad_input():
    line = np.zeros((3, 3), np.float32)
    line[:, 0] = [3, 1, 2]
    assert fps_split(line, 3).tolist() == [0, 1, 2]
    assert fps_split(line, 10).tolist() == [0, 1, 2]
    assert fps_split(line, 0).tolist() == []
    assert sorted(fps_split(line, 2).tolist()) in ([0, 1], [0, 2], [1, 2])
    same = np.ones((20, 3), np.float32)
    assert sorted(fps_split(same, 6).tolist()) == sorted(set(fps_split(same, 6).tolist()))
    with pytest.raises(ValueError, match="shape"):
        fps_split(np.zeros((4, 2), np.float32), 2)
    bad = np.random.default_rng(0).random((50, 3))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fps_split(bad, 5)


def test_the_sampler_name():
    cloud = np.random.default_rng(0).random((500, 3)).astype(np.float32)
    assert implementation("fps-split") == "fps-split"
    assert sampled_in_pick_order(cloud, 50, "fps-split").tolist() == fps_split(cloud, 50).tolist()
    assert sorted(sample_indices(cloud, 50, "fps-split").tolist()) == sorted(fps_split(cloud, 50).tolist())
