"""pykdtree against cKDTree: the same neighbours, and the same kNN graph and fill through them."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.geometry.fill import idw_fill
from st3d_edge.geometry.kdtree import pykdtree_available, query_nearest
from st3d_edge.geometry.knn import knn_indices
from tests.geometry_helpers import assert_same_neighbours_up_to_ties, height_field
from tests.helpers import assert_close

needs_pykdtree = pytest.mark.skipif(not pykdtree_available(), reason="pykdtree is not installed")


@needs_pykdtree
@pytest.mark.parametrize("seed", range(3))
def test_pykdtree_finds_the_same_neighbours_as_ckdtree(seed):
    rng = np.random.default_rng(seed)
    data = height_field(int(rng.integers(500, 5000)), seed=seed)
    queries = np.concatenate([data[:200], rng.random((200, 3)).astype(np.float32) * 0.1])
    k = int(rng.integers(1, 40))
    fast = query_nearest(data, queries, k, use_pykdtree=True)
    slow = query_nearest(data, queries, k + 1, use_pykdtree=False)
    assert fast[1].dtype == np.int64 and fast[1].shape == (400, k)
    assert_same_neighbours_up_to_ties(fast, slow)


@needs_pykdtree
def test_knn_graph_and_fill_agree_across_trees():
    cloud = height_field(3000, seed=4)
    fast, slow = knn_indices(cloud, 16, use_pykdtree=True), knn_indices(cloud, 16, use_pykdtree=False)
    assert np.array_equal(fast[:, 0], np.arange(len(cloud)))
    assert np.array_equal(np.sort(fast, axis=1), np.sort(slow, axis=1))
    samples, scores = cloud[::7], np.random.default_rng(0).random(len(cloud[::7]))
    assert_close(
        idw_fill(samples, scores, cloud, use_pykdtree=True),
        idw_fill(samples, scores, cloud, use_pykdtree=False),
        rtol=1e-6,
        atol=0.0,
        what="fill",
    )


def test_small_and_one_neighbour_queries_have_two_dimensions():
    data = np.array([[0, 0, 0], [1, 0, 0], [3, 0, 0]], dtype=np.float32)
    for use in (False, True) if pykdtree_available() else (False,):
        dist, idx = query_nearest(data, data[:2] + 0.1, 1, use_pykdtree=use)
        assert dist.shape == idx.shape == (2, 1) and idx[:, 0].tolist() == [0, 1]
        dist, idx = query_nearest(data, data, 3, use_pykdtree=use)
        assert idx[:, 0].tolist() == [0, 1, 2] and dist[2].tolist() == [0.0, 2.0, 3.0]
