"""Scale s of eq. (4): by hand, against loops, invariants and streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest

from st3d_edge.geometry.knn import knn_indices
from st3d_edge.geometry.scale import knn_distance_sum, scale_s
from tests.geometry_helpers import FLOAT64_SAME_MATH
from tests.helpers import assert_close


def loops_reference(clouds_and_knns):
    total, count = 0.0, 0
    for cloud, knn in clouds_and_knns:
        for p in range(len(cloud)):
            for q in knn[p][1:]:  # column 0 is the point itself
                total += math.dist(cloud[p].tolist(), cloud[q].tolist())
                count += 1
    return total / count


def test_two_points_by_hand():
    cloud = np.array([[0, 0, 0], [0, 2, 0]], dtype=np.float32)
    knn = np.array([[0, 1], [1, 0]], dtype=np.int32)
    assert knn_distance_sum(cloud, knn) == (4.0, 2)
    assert scale_s([(cloud, knn)]) == 2.0


def test_self_column_is_excluded():
    cloud = np.array([[0, 0, 0], [3, 4, 0], [0, 0, 1]], dtype=np.float32)
    knn = np.array([[0, 2, 1], [1, 2, 0], [2, 0, 1]], dtype=np.int32)
    total, count = knn_distance_sum(cloud, knn)
    assert count == 6
    assert total == pytest.approx(1 + 5 + math.sqrt(26) + 5 + 1 + math.sqrt(26))


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one point"):
        scale_s([])
    with pytest.raises(ValueError, match="shape"):
        knn_distance_sum(np.zeros((3, 3)), np.zeros((2, 2), dtype=np.int32))


@pytest.mark.parametrize("seed", range(4))
def test_matches_loops_over_several_clouds(seed):
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(int(rng.integers(1, 4))):
        cloud = (rng.random((int(rng.integers(20, 200)), 3)) * rng.uniform(0.1, 5)).astype(np.float32)
        pairs.append((cloud, knn_indices(cloud, int(rng.integers(2, 10)))))
    assert_close(scale_s(pairs), loops_reference(pairs), **FLOAT64_SAME_MATH, what="s")


def test_streaming_equals_one_batch_and_scales_linearly():
    rng = np.random.default_rng(5)
    clouds = [rng.random((100, 3)).astype(np.float32) for _ in range(3)]
    pairs = [(c, knn_indices(c, 5)) for c in clouds]
    s = scale_s(iter(pairs))  # a one-shot iterator is enough
    sums = [knn_distance_sum(c, k) for c, k in pairs]
    assert_close(s, sum(t for t, _ in sums) / sum(n for _, n in sums), **FLOAT64_SAME_MATH, what="s")
    assert_close(scale_s(sums), s, **FLOAT64_SAME_MATH, what="s from precomputed sums")
    assert_close(scale_s([sums[0], pairs[1], sums[2]]), s, **FLOAT64_SAME_MATH, what="mixed")
    scaled = [(c * np.float32(4.0), k) for c, k in pairs]  # x4 is exact in float32
    assert_close(scale_s(scaled), 4 * s, **FLOAT64_SAME_MATH, what="4 s")
    moved = [(c + np.float32(0.5), k) for c, k in pairs]
    assert scale_s(moved) == pytest.approx(s, rel=1e-6)  # float32 rounding of the shift only
