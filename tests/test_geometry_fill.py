"""IDW fill and the image score: by hand, against brute force, invariants."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.geometry.fill import idw_fill
from st3d_edge.geometry.knn import knn_indices
from st3d_edge.geometry.smoothing import image_score
from tests.helpers import FLOAT32_SAME_MATH, assert_close


def _line(xs) -> np.ndarray:
    return np.array([[x, 0.0, 0.0] for x in xs], dtype=np.float32)


def idw_reference(samples, scores, queries, neighbours, power):
    """Every query against every sample, sorted by (distance, index), one query at a time."""
    samples = samples.astype(np.float64)
    out = []
    for q in queries.astype(np.float64):
        d = np.sqrt(((samples - q) ** 2).sum(1))
        near = np.lexsort((np.arange(len(d)), d))[:neighbours]
        if (d[near] == 0).any():
            out.append(scores[near][d[near] == 0].mean())
        else:
            w = 1.0 / d[near] ** power
            out.append((w * scores[near]).sum() / w.sum())
    return np.array(out)


def image_score_reference(scores, knn, neighbours):
    return max(sum(scores[j] for j in row[:neighbours]) / len(row[:neighbours]) for row in knn)


# ---- idw_fill --------------------------------------------------------------------------


def test_idw_by_hand():
    samples, scores = _line([0, 1]), np.array([0.0, 1.0])
    # at 0.25: weights 1/0.25^2 = 16 and 1/0.75^2 = 16/9, so (16/9) / (16 + 16/9) = 0.1
    filled = idw_fill(samples, scores, _line([0.25, 0, 1]), neighbours=2)
    assert filled.dtype == np.float32
    assert_close(filled, [0.1, 0.0, 1.0], **FLOAT32_SAME_MATH, what="line")
    # power 1 at 0.25: weights 4 and 4/3, so (4/3) / (16/3) = 0.25
    assert_close(idw_fill(samples, scores, _line([0.25]), 2, 1.0), [0.25], **FLOAT32_SAME_MATH)


def test_idw_exact_hit_on_duplicate_samples_takes_their_mean():
    samples = _line([0, 0, 5])
    filled = idw_fill(samples, np.array([1.0, 3.0, 100.0]), _line([0]), neighbours=3)
    assert filled.tolist() == [2.0]


def test_idw_edge_cases():
    samples = _line([0, 1])
    assert idw_fill(samples, [1.0, 2.0], np.zeros((0, 3)), 4).shape == (0,)
    # more neighbours than samples uses all of them
    assert_close(idw_fill(samples, [1.0, 3.0], _line([0.5]), 10), [2.0], **FLOAT32_SAME_MATH)
    with pytest.raises(ValueError, match="sample_scores"):
        idw_fill(samples, [1.0], _line([0.5]))
    with pytest.raises(ValueError, match="at least one"):
        idw_fill(np.zeros((0, 3)), [], _line([0.5]))
    with pytest.raises(ValueError, match="neighbours"):
        idw_fill(samples, [1.0, 2.0], _line([0.5]), 0)


@pytest.mark.parametrize("seed", range(5))
def test_idw_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    samples = rng.random((int(rng.integers(1, 300)), 3)).astype(np.float32)
    queries = rng.random((200, 3)).astype(np.float32)
    queries[:10] = samples[rng.integers(0, len(samples), 10)]  # some exact hits
    scores = rng.normal(size=len(samples))
    neighbours, power = int(rng.integers(1, 9)), float(rng.choice([1.0, 2.0, 3.0]))
    fast = idw_fill(samples, scores, queries, neighbours, power)
    slow = idw_reference(samples, scores, queries, min(neighbours, len(samples)), power)
    assert_close(fast, slow, **FLOAT32_SAME_MATH, what=f"seed {seed}")


def test_idw_invariants():
    rng = np.random.default_rng(7)
    samples = rng.random((100, 3)).astype(np.float32)
    queries = rng.random((300, 3)).astype(np.float32)
    scores = rng.random(100)
    filled = idw_fill(samples, scores, queries)
    # a weighted mean stays inside the range of the scores
    assert filled.min() >= scores.min() - 1e-6 and filled.max() <= scores.max() + 1e-6
    assert_close(idw_fill(samples, np.full(100, 0.7), queries), np.full(300, 0.7), **FLOAT32_SAME_MATH)
    perm = rng.permutation(100)
    assert_close(idw_fill(samples[perm], scores[perm], queries), filled, **FLOAT32_SAME_MATH)
    assert_close(idw_fill(samples + 2, scores, queries + 2), filled, **FLOAT32_SAME_MATH)
    # scores enter linearly
    assert_close(idw_fill(samples, 3 * scores + 1, queries), 3 * filled + 1, **FLOAT32_SAME_MATH)


# ---- image_score -----------------------------------------------------------------------


def test_image_score_by_hand():
    cloud = _line([0, 1, 2, 3, 4])
    knn = knn_indices(cloud, 3)  # 2 -> [2, 1, 3] (ties by index), 0 -> [0, 1, 2]
    scores = np.array([0.0, 0.0, 9.0, 0.0, 0.0])
    assert image_score(cloud, scores, knn, neighbours=1) == 9.0  # no smoothing: the max
    assert image_score(cloud, scores, knn, neighbours=3) == 3.0  # the spike is averaged down
    patch = np.array([0.0, 6.0, 6.0, 6.0, 0.0])
    assert image_score(cloud, patch, knn, neighbours=3) == 6.0  # a patch keeps its level


def test_image_score_bad_arguments():
    cloud = _line([0, 1])
    knn = np.array([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="same points"):
        image_score(cloud, [1.0], knn)
    with pytest.raises(ValueError, match="at least one"):
        image_score(np.zeros((0, 3)), [], np.zeros((0, 2), int))
    with pytest.raises(ValueError, match="neighbours"):
        image_score(cloud, [1.0, 2.0], knn, neighbours=0)


@pytest.mark.parametrize("seed", range(4))
def test_image_score_matches_loops_and_relabelling(seed):
    rng = np.random.default_rng(seed)
    cloud = rng.random((int(rng.integers(10, 400)), 3)).astype(np.float32)
    knn = knn_indices(cloud, 8)
    scores = rng.gamma(2.0, size=len(cloud))
    neighbours = int(rng.integers(1, 9))
    value = image_score(cloud, scores, knn, neighbours)
    assert_close(value, image_score_reference(scores, knn, neighbours), **FLOAT32_SAME_MATH)
    perm = rng.permutation(len(cloud))
    inverse = np.argsort(perm)
    relabelled = image_score(cloud[perm], scores[perm], inverse[knn[perm]], neighbours)
    assert_close(relabelled, value, **FLOAT32_SAME_MATH, what="relabelled")
    assert value <= scores.max()
