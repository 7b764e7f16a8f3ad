from __future__ import annotations

import json

import numpy as np
import pytest

from st3d_edge.calibration.stats import RunningMoments, load_stats, save_stats
from st3d_edge.errors import St3dError
from tests.helpers import EXACT, FLOAT64_SOLVER, assert_close


def test_hand_worked_moments():
    m = RunningMoments(2)
    m.update([[1.0, 10.0], [3.0, 10.0]])
    m.update([[5.0, 10.0]])
    assert m.count == 3
    assert_close(m.mean, [3.0, 10.0], **EXACT, what="mean")
    # population std of (1, 3, 5) is sqrt(8/3); a constant channel is floored, not zero
    assert_close(m.std, [np.sqrt(8 / 3), 1e-6], **FLOAT64_SOLVER, what="std")


def test_streamed_equals_stacked_in_any_split():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(5.0, 3.0, size=(int(rng.integers(1, 50)), 7)).astype(np.float32) for _ in range(9)]
    stacked = np.concatenate(chunks).astype(np.float64)
    streamed = RunningMoments(7)
    for c in chunks:
        streamed.update(c)
    assert_close(streamed.mean, stacked.mean(0), **FLOAT64_SOLVER, what="mean")
    assert_close(streamed.std, stacked.std(0), **FLOAT64_SOLVER, what="std")

    # two "ranks" holding interleaved shares, merged, give the same moments
    a, b = RunningMoments(7), RunningMoments(7)
    for i, c in enumerate(chunks):
        (a if i % 2 == 0 else b).update(c)
    a.merge(RunningMoments.from_state(*b.state()))
    assert a.count == stacked.shape[0]
    assert_close(a.mean, stacked.mean(0), **FLOAT64_SOLVER, what="merged mean")
    assert_close(a.std, stacked.std(0), **FLOAT64_SOLVER, what="merged std")


def test_large_offset_stays_accurate():
    # the naive sum-of-squares formula loses everything here; the pairwise update does not
    x = 1e6 + np.random.default_rng(1).normal(size=(1000, 3))
    m = RunningMoments(3)
    for part in np.array_split(x, 10):
        m.update(part)
    assert_close(m.std, x.std(0), **FLOAT64_SOLVER, what="std")


def test_shape_checked():
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        RunningMoments(4).update(np.zeros((3, 5)))
    with pytest.raises(ValueError):
        _ = RunningMoments(4).mean


def test_save_load_roundtrip(tmp_path):
    mu = np.arange(4, dtype=np.float32)
    sigma = np.full(4, 2.0, dtype=np.float32)
    save_stats(tmp_path / "stats", 0.125, mu, sigma, clouds=3)
    s, mu2, sigma2 = load_stats(tmp_path / "stats")
    assert s == 0.125
    assert_close(mu2, mu, **EXACT, what="mu")
    assert_close(sigma2, sigma, **EXACT, what="sigma")
    assert json.loads((tmp_path / "stats" / "scale.json").read_text())["clouds"] == 3
    assert sorted(p.name for p in (tmp_path / "stats").iterdir()) == ["mu.npy", "scale.json", "sigma.npy"]


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(St3dError, match=r"scale\.json: file not found"):
        load_stats(tmp_path)
    (tmp_path / "scale.json").write_text('{"s": -1}')
    with pytest.raises(St3dError, match=r"scale\.json: scale s must be a positive"):
        load_stats(tmp_path)
    (tmp_path / "scale.json").write_text('{"s": 0.5}')
    np.save(tmp_path / "mu.npy", np.zeros(3, np.float32))
    (tmp_path / "sigma.npy").write_bytes(b"garbage")
    with pytest.raises(St3dError, match=r"sigma\.npy: not a NumPy array file"):
        load_stats(tmp_path)
