"""Receptive field R(p) of eq. (2): by hand, against a plain BFS, invariants."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.geometry.knn import knn_indices
from st3d_edge.geometry.receptive_field import receptive_field


def bfs_reference(knn, index, hops):
    """Eq. (2) literally: knn^0 = {p}; knn^l = union of knn(q) for q in knn^(l-1); R = union."""
    level = {index}
    field = set(level)
    for _ in range(hops):
        level = {int(q) for p in level for q in knn[p]}
        field |= level
    return sorted(field)


# ---- tier 1: hand-worked ---------------------------------------------------------------


def test_chain_by_hand():
    # each point's neighbours: itself and the next one (the last points to itself only)
    knn = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 4]], dtype=np.int32)
    assert receptive_field(knn, 0, 0).tolist() == [0]
    assert receptive_field(knn, 0, 2).tolist() == [0, 1, 2]
    assert receptive_field(knn, 3, 5).tolist() == [3, 4]
    # edges are followed forward only: nothing points back to 0
    assert 0 not in receptive_field(knn, 1, 10).tolist()
    assert receptive_field(knn, 0, 1).dtype == np.int64


def test_bad_arguments():
    knn = np.zeros((3, 2), dtype=np.int32)
    with pytest.raises(ValueError, match="index"):
        receptive_field(knn, 3, 1)
    with pytest.raises(ValueError, match="hops"):
        receptive_field(knn, 0, -1)
    with pytest.raises(ValueError, match="shape"):
        receptive_field(np.zeros(3, dtype=np.int32), 0, 1)


# ---- tier 2: against the plain BFS -----------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_matches_bfs(seed):
    rng = np.random.default_rng(seed)
    n_points, k = int(rng.integers(50, 800)), int(rng.integers(2, 12))
    if seed % 2:
        knn = knn_indices(rng.random((n_points, 3)).astype(np.float32), k)
    else:  # an arbitrary directed graph, not only geometric ones
        knn = rng.integers(0, n_points, (n_points, k)).astype(np.int32)
    for _ in range(5):
        index, hops = int(rng.integers(0, n_points)), int(rng.integers(0, 9))
        assert receptive_field(knn, index, hops).tolist() == bfs_reference(knn, index, hops)


# ---- tier 3: invariants ----------------------------------------------------------------


def test_grows_with_hops_and_stays_local():
    cloud = np.random.default_rng(3).random((1500, 3)).astype(np.float32)
    knn = knn_indices(cloud, 8)
    radius = np.sqrt(((cloud[knn] - cloud[:, None, :]) ** 2).sum(-1)).max()
    previous = {7}
    for hops in range(1, 6):
        field = receptive_field(knn, 7, hops)
        assert previous <= set(field.tolist())
        # locality: L hops cannot reach farther than L times the longest kNN edge
        assert np.linalg.norm(cloud[field] - cloud[7], axis=1).max() <= hops * radius + 1e-6
        previous = set(field.tolist())


def test_relabelling_equivariance():
    rng = np.random.default_rng(4)
    knn = rng.integers(0, 300, (300, 6))
    perm = rng.permutation(300)  # new label i is old point perm[i]
    inverse = np.argsort(perm)
    relabelled = inverse[knn[perm]]
    field = receptive_field(knn, 11, 3)
    assert sorted(perm[receptive_field(relabelled, int(inverse[11]), 3)].tolist()) == field.tolist()
