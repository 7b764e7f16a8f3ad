from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.calibration.thresholds import (
    Thresholds,
    image_threshold,
    load_thresholds,
    pixel_threshold,
    save_thresholds,
)
from st3d_edge.errors import St3dError


def _threshold_reference(scores, fpr):
    """Try every observed score from the smallest up; keep the first whose rate above is <= fpr."""
    scores = np.asarray(scores, dtype=np.float64)
    for t in sorted(set(scores.tolist())):
        if np.mean(scores > t) <= fpr + 1e-12:
            return t
    raise AssertionError("unreachable: the maximum always qualifies")


def test_hand_worked():
    scores = np.arange(1, 101, dtype=np.float64)  # 1..100
    assert pixel_threshold(scores, fpr=0.01) == 99.0  # only 100 lies above
    assert pixel_threshold(scores, fpr=0.05) == 95.0
    assert image_threshold([0.3, 0.9, 0.5]) == 0.9  # default: the largest good image score
    assert pixel_threshold(scores, fpr=0.0) == 100.0


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.exponential(size=int(rng.integers(1, 400))), 1)  # many ties
    for fpr in (0.0, 0.003, 0.01, 0.1, 0.5):
        t = pixel_threshold(scores, fpr)
        assert t == _threshold_reference(scores, fpr)
        assert np.mean(scores > t) <= fpr + 1e-12


def test_bad_input():
    with pytest.raises(ValueError):
        pixel_threshold([], 0.01)
    with pytest.raises(ValueError):
        pixel_threshold([1.0, np.nan], 0.01)
    with pytest.raises(ValueError):
        pixel_threshold([1.0], 1.0)


def test_save_load(tmp_path):
    t = Thresholds(pixel=1.5, image=2.5, validation_scans=4, validation_points=1024)
    save_thresholds(tmp_path / "thresholds.json", t)
    assert load_thresholds(tmp_path / "thresholds.json") == t
    (tmp_path / "bad.json").write_text('{"pixel": 1}')
    with pytest.raises(St3dError, match=r"bad\.json: not a thresholds file"):
        load_thresholds(tmp_path / "bad.json")
    with pytest.raises(St3dError, match="missing.json: file not found"):
        load_thresholds(tmp_path / "missing.json")
