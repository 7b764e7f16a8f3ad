"""The Back to the Feature baseline: coreset and memory-bank scoring against obvious references."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.calibration.memory_bank import greedy_coreset
from st3d_edge.evaluation.btf import BtfBaseline, fpfh_descriptors
from tests.helpers import EXACT, FLOAT32_SAME_MATH, assert_close


def greedy_coreset_slow(features, count, start=0):
    """Every step: the distance of every row to every chosen row, written out."""
    chosen = [start]
    while len(chosen) < count:
        best, best_distance = -1, -1.0
        for i, row in enumerate(features):
            distance = min(float(np.sum((row - features[j]) ** 2)) for j in chosen)
            if distance > best_distance:
                best, best_distance = i, distance
        chosen.append(best)
    return np.array(chosen)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_coreset_matches_the_obvious_loop(seed):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(60, 5))
    start = int(rng.integers(60))
    assert_close(greedy_coreset(features, 12, start), greedy_coreset_slow(features, 12, start), **EXACT)


def surface(seed: int, bump: bool = False, side: int = 36) -> np.ndarray:
    """A gently curved patch 1 m in front of the camera, optionally with a bump in its middle."""
    rng = np.random.default_rng(seed)
    u, v = np.meshgrid(np.linspace(-0.1, 0.1, side), np.linspace(-0.1, 0.1, side))
    z = 1.0 + 0.05 * (u**2 + v**2) + rng.normal(scale=1e-5, size=u.shape)
    if bump:
        z -= 0.01 * np.exp(-(u**2 + v**2) / (2 * 0.015**2))
    return np.stack([u, v, z], axis=-1).reshape(-1, 3).astype(np.float32)


def test_fpfh_shape():
    descriptors = fpfh_descriptors(surface(0), 0.02, 0.05)
    assert descriptors.shape == (36 * 36, 33) and descriptors.dtype == np.float32
    assert np.isfinite(descriptors).all()


def test_scores_are_distances_to_the_nearest_bank_descriptor():
    baseline = BtfBaseline(n=500, k=8, coreset_fraction=0.3).fit([surface(1), surface(2)])
    assert len(baseline.bank.bank) == round(0.3 * 1000)
    idx, knn, scores = baseline(surface(3, bump=True))
    assert knn.shape == (500, 8) and len(idx) == 500
    descriptors = baseline._describe(surface(3, bump=True)[idx])
    brute = np.sqrt(((descriptors[:, None, :] - baseline.bank.bank[None, :, :]) ** 2).sum(-1)).min(axis=1)
    assert_close(scores, brute, **FLOAT32_SAME_MATH, what="nearest bank distance")


def test_training_cloud_scores_zero_with_the_full_bank():
    cloud = surface(4)
    baseline = BtfBaseline(n=400, k=8, coreset_fraction=1.0).fit([cloud])
    _, _, scores = baseline(cloud)
    assert_close(scores, np.zeros_like(scores), **EXACT, what="seen cloud")


def test_a_bump_scores_higher_than_the_rest():
    baseline = BtfBaseline(n=600, k=8, coreset_fraction=0.5).fit([surface(5), surface(6)])
    points = surface(7, bump=True)
    idx, _, scores = baseline(points)
    centre = np.hypot(points[idx, 0], points[idx, 1]) < 0.02
    assert scores[centre].mean() > 3 * scores[~centre].mean()


def test_scoring_before_fit_is_refused():
    with pytest.raises(RuntimeError):
        BtfBaseline(n=10, k=4)(surface(0))
