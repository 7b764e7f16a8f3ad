"""Harmonic interpolation against a dense direct solve, plus the invariants it must keep."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.evaluation.harmonic import harmonic_fill, harmonic_fill64
from tests.eval_tolerances import FLOAT32_AMG
from tests.helpers import EXACT, FLOAT64_SOLVER, assert_close


def dense_harmonic(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The obvious reference: one equation per pixel, written out, solved densely."""
    h, w = values.shape
    n = h * w
    a = np.zeros((n, n))
    b = np.zeros(n)
    for r in range(h):
        for c in range(w):
            i = r * w + c
            if known[r, c]:
                a[i, i] = 1.0
                b[i] = values[r, c]
                continue
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                rr, cc = r + dr, c + dc
                if 0 <= rr < h and 0 <= cc < w:
                    a[i, i] += 1.0
                    a[i, rr * w + cc] -= 1.0
    return np.linalg.solve(a, b).reshape(h, w)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_dense_solve(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(5, 14, size=2)
    values = rng.normal(size=(h, w))
    known = rng.random((h, w)) < 0.15
    known[rng.integers(h), rng.integers(w)] = True
    assert_close(harmonic_fill64(values, known), dense_harmonic(values, known), **FLOAT64_SOLVER, what="fill")


def test_default_float32_path_matches_dense_solve():
    rng = np.random.default_rng(3)
    values = rng.random((12, 9))
    known = rng.random((12, 9)) < 0.2
    known[0, 0] = True
    out = harmonic_fill(values, known)
    assert out.dtype == np.float32
    assert_close(out, dense_harmonic(values, known), **FLOAT32_AMG, what="float32 fill")


def test_known_pixels_keep_their_values():
    rng = np.random.default_rng(4)
    values = rng.random((30, 40)).astype(np.float32)
    known = rng.random((30, 40)) < 0.1
    out = harmonic_fill(values, known)
    assert_close(out[known], values[known], **EXACT, what="known pixels")


def test_linear_ramp_is_reproduced():
    # The ramp runs along the columns, so its first and last columns must be known (the free
    # border has a zero normal derivative); the rest of the known pixels are scattered.
    rng = np.random.default_rng(5)
    h, w = 40, 50
    ramp = np.tile(0.5 + 0.25 * np.arange(w, dtype=np.float64), (h, 1))
    known = rng.random((h, w)) < 0.05
    known[:, 0] = known[:, -1] = True
    assert_close(harmonic_fill64(values=ramp, known=known), ramp, **FLOAT64_SOLVER, what="ramp")


def test_constant_stays_constant():
    rng = np.random.default_rng(6)
    values = np.full((25, 35), 3.25)
    known = rng.random((25, 35)) < 0.02
    known[10, 10] = True
    assert_close(harmonic_fill64(values, known), values, **FLOAT64_SOLVER, what="constant")


def test_enclosed_region_takes_the_value_of_its_constant_ring():
    ring = np.zeros((7, 7), dtype=bool)
    ring[1:6, 1:6] = True
    ring[2:5, 2:5] = False
    values = np.where(ring, 4.0, -9.0)  # the -9 pixels are unknown and must not leak in
    assert_close(harmonic_fill64(values, ring), np.full((7, 7), 4.0), **FLOAT64_SOLVER, what="ring")


def test_no_known_pixel_gives_zeros_and_all_known_is_identity():
    values = np.arange(12.0).reshape(3, 4)
    assert_close(harmonic_fill64(values, np.zeros((3, 4), bool)), np.zeros((3, 4)), **EXACT, what="none")
    assert_close(harmonic_fill64(values, np.ones((3, 4), bool)), values, **EXACT, what="all known")


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError):
        harmonic_fill(np.zeros((3, 4)), np.zeros((4, 3), bool))
