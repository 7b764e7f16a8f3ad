"""kNN: by hand, cKDTree against the brute-force reference up to ties, invariants."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.geometry.knn import knn_bruteforce, knn_indices, put_self_first
from tests.geometry_helpers import FLOAT64_SAME_MATH
from tests.helpers import assert_close


def _line(xs) -> np.ndarray:
    return np.array([[x, 0.0, 0.0] for x in xs], dtype=np.float32)


def _distances(cloud, knn):
    c = cloud.astype(np.float64)
    return np.sqrt(((c[knn] - c[:, None, :]) ** 2).sum(-1))


# ---- tier 1: hand-worked ---------------------------------------------------------------


@pytest.mark.parametrize("knn_fn", [knn_indices, knn_bruteforce])
def test_line_by_hand(knn_fn):
    knn = knn_fn(_line([0, 1, 3, 6]), 3)
    assert knn.dtype == np.int32 and knn.shape == (4, 3)
    assert knn.tolist() == [[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 2, 1]]


@pytest.mark.parametrize("knn_fn", [knn_indices, knn_bruteforce])
def test_self_first_with_duplicates(knn_fn):
    cloud = np.concatenate([np.zeros((5, 3)), _line([1, 2, 3])]).astype(np.float32)
    knn = knn_fn(cloud, 3)
    assert knn[:, 0].tolist() == list(range(8))
    assert all(len(set(row)) == 3 for row in knn.tolist())
    # rows of the five copies hold only copies: the other neighbours are at distance 0
    assert (knn[:5] < 5).all()


def test_put_self_first_moves_or_shifts():
    rows = np.array([[1, 0, 2], [0, 2, 3], [0, 1, 3]], dtype=np.int32)
    assert put_self_first(rows).tolist() == [[0, 1, 2], [1, 0, 2], [2, 0, 1]]


@pytest.mark.parametrize("knn_fn", [knn_indices, knn_bruteforce])
def test_bad_arguments(knn_fn):
    with pytest.raises(ValueError, match="at least 5 points"):
        knn_fn(_line([0, 1, 2]), 5)
    with pytest.raises(ValueError, match="shape"):
        knn_fn(np.zeros((3, 2)), 1)
    with pytest.raises(ValueError, match="k must be"):
        knn_fn(_line([0, 1]), 0)


# ---- tier 2: cKDTree against brute force -----------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_tree_matches_bruteforce_up_to_ties(seed):
    rng = np.random.default_rng(seed)
    n_points = int(rng.integers(40, 1500))
    k = int(rng.integers(1, min(40, n_points) + 1))
    cloud = (rng.random((n_points, 3)) * rng.uniform(0.01, 100)).astype(np.float32)
    if seed % 2:  # grid-like data has many exact ties
        cloud = np.round(cloud * 4 / cloud.max()).astype(np.float32)
    fast = knn_indices(cloud, k)
    slow = knn_bruteforce(cloud, k, chunk=97)
    assert (fast[:, 0] == np.arange(n_points)).all() and (slow[:, 0] == np.arange(n_points)).all()
    assert_close(_distances(cloud, fast), _distances(cloud, slow), **FLOAT64_SAME_MATH, what="distances")
    # where the k-th distance is strictly below the (k+1)-th, the sets must be identical
    full = _distances(cloud, knn_bruteforce(cloud, min(k + 1, n_points)))
    distinct = full[:, k - 1] < full[:, -1] if k < n_points else np.ones(n_points, bool)
    for row in np.flatnonzero(distinct):
        assert set(fast[row].tolist()) == set(slow[row].tolist()), f"row {row}"


# ---- tier 3: invariants ----------------------------------------------------------------


def test_permutation_equivariance():
    rng = np.random.default_rng(7)
    cloud = rng.random((500, 3)).astype(np.float32)
    perm = rng.permutation(500)
    knn = knn_indices(cloud, 8)
    shuffled = knn_indices(cloud[perm], 8)
    # point i of the shuffled cloud is point perm[i]; its neighbours map back through perm
    assert (perm[shuffled] == knn[perm]).all()


def test_translation_invariance():
    # eighths below 8192 and a shift by 64 are exact in float32, so distances must not change
    cloud = (np.random.default_rng(8).integers(0, 2**16, (400, 3)) / 8).astype(np.float32)
    dist = _distances(cloud, knn_indices(cloud, 6))
    moved = cloud + np.float32(64.0)
    assert_close(_distances(moved, knn_indices(moved, 6)), dist, **FLOAT64_SAME_MATH, what="moved")
