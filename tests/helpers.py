"""The one closeness helper for arrays that every test uses, with stated tolerances."""

from __future__ import annotations

import numpy as np

# Tolerances by what is compared; use a name, not a number picked on the spot.
EXACT = dict(rtol=0.0, atol=0.0)
FLOAT32_SAME_MATH = dict(rtol=1e-5, atol=1e-6)  # same formula, float32, different op order
FLOAT32_DIFFERENT_KERNELS = dict(rtol=1e-4, atol=1e-5)  # e.g. torch vs onnxruntime
FLOAT64_SOLVER = dict(rtol=1e-6, atol=1e-8)  # iterative vs direct linear solves


def assert_close(actual, expected, *, rtol: float, atol: float, what: str = "") -> None:
    """``|actual - expected| <= atol + rtol * |expected|`` everywhere, with a readable failure."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    err = np.abs(a - e)
    bound = atol + rtol * np.abs(e)
    bad = ~(err <= bound)
    if bad.any():
        i = np.unravel_index(int(np.argmax(np.where(bad, err - bound, -np.inf))), a.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {a.size} values differ; worst at {i}: "
            f"{a[i]!r} vs {e[i]!r} (rtol={rtol}, atol={atol})"
        )
