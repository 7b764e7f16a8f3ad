from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.evaluation.feature_rank import effective_rank
from tests.helpers import FLOAT64_SOLVER, assert_close


def _reference(features):
    """The definition written out: standardise, singular values squared, exp(entropy)."""
    x = np.asarray(features, dtype=np.float64)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    energy = np.linalg.svd(x, compute_uv=False) ** 2
    p = energy / energy.sum()
    p = p[p > 1e-15]
    return float(np.exp(-(p * np.log(p)).sum()))


def test_matches_the_definition_on_correlated_features():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(500, 3))
    features = np.hstack([base, base @ rng.normal(size=(3, 5)) + 0.1 * rng.normal(size=(500, 5))])
    assert_close(effective_rank(features), _reference(features), **FLOAT64_SOLVER, what="rank")


def test_extremes_one_line_and_independent_channels():
    rng = np.random.default_rng(1)
    line = rng.normal(size=(400, 1)) * rng.normal(size=(1, 8))  # every channel a multiple of one
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-6)
    independent = rng.normal(size=(200_000, 8))
    assert effective_rank(independent) == pytest.approx(8.0, abs=0.01)
    # a constant channel adds no direction
    assert effective_rank(np.hstack([independent[:1000], np.ones((1000, 1))])) == pytest.approx(
        effective_rank(independent[:1000])
    )


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="effective_rank"):
        effective_rank(np.zeros(5))
