"""Background-plane removal (RANSAC): finds the table under a part and keeps the part."""

from __future__ import annotations

import numpy as np

from st3d_edge.data import plane
from tests.helpers import EXACT, FLOAT64_SOLVER, assert_close


def _table_and_part(rng, n_plane=6000, n_part=1500):
    """A tilted noisy table (0.2 mm noise) and a 2 cm tall box standing on it, in metres."""
    xy = rng.uniform(-0.05, 0.05, (n_plane, 2))
    z = 0.4 + 0.05 * xy[:, 0] - 0.03 * xy[:, 1] + rng.normal(0, 2e-4, n_plane)
    table = np.column_stack([xy, z])
    pxy = rng.uniform(-0.01, 0.01, (n_part, 2))
    pz = 0.4 + 0.05 * pxy[:, 0] - 0.03 * pxy[:, 1] - rng.uniform(0.008, 0.02, n_part)
    part = np.column_stack([pxy, pz])
    points = np.vstack([table, part]).astype(np.float32)
    is_part = np.r_[np.zeros(n_plane, bool), np.ones(n_part, bool)]
    return points, is_part


def _ransac_reference(points, distance, iterations, seed):
    """The obvious RANSAC: every hypothesis scored on every point, one plane at a time."""
    pts = points.astype(np.float64)
    rng = np.random.default_rng(seed)
    rng.choice(len(pts), min(len(pts), plane.SCORING_POINTS), replace=False)  # same stream as the fast one
    best, best_count = None, -1
    for a, b, c in pts[rng.integers(0, len(pts), (iterations, 3))]:
        n = np.cross(b - a, c - a)
        if np.linalg.norm(n) <= 1e-12:
            continue
        n = n / np.linalg.norm(n)
        count = int((np.abs((pts - a) @ n) <= distance).sum())
        if count > best_count:
            best, best_count = (n, a), count
    n, a = best
    inliers = np.abs((pts - a) @ n) <= distance
    normal, offset = plane.fit_plane(pts[inliers])
    return np.abs(pts @ normal + offset) > distance


def test_removes_the_table_and_keeps_the_part():
    points, is_part = _table_and_part(np.random.default_rng(0))
    keep = plane.remove_background_plane(points)
    assert keep.dtype == bool and keep.shape == (len(points),)
    assert_close(keep, is_part, **EXACT, what="keep mask")


def test_same_seed_same_mask_and_fast_scoring_matches_reference():
    points, _ = _table_and_part(np.random.default_rng(1), 3000, 800)
    points[:200, 2] += np.random.default_rng(2).uniform(-0.004, 0.004, 200)  # borderline points
    a = plane.remove_background_plane(points, distance=0.002, iterations=50, seed=3)
    b = plane.remove_background_plane(points, distance=0.002, iterations=50, seed=3)
    assert_close(a, b, **EXACT, what="same seed")
    reference = _ransac_reference(points, 0.002, 50, 3)
    assert_close(a, reference, **EXACT, what="chunked scoring vs one plane at a time")


def test_fit_plane_recovers_a_known_plane():
    rng = np.random.default_rng(4)
    xy = rng.uniform(-1, 1, (100, 2))
    pts = np.column_stack([xy, 2.0 + 0.5 * xy[:, 0]])
    normal, offset = plane.fit_plane(pts)
    sign = np.sign(normal[2])
    assert_close(sign * normal, np.array([-0.5, 0.0, 1.0]) / np.sqrt(1.25), **FLOAT64_SOLVER, what="normal")
    assert_close(sign * offset, -2.0 / np.sqrt(1.25), **FLOAT64_SOLVER, what="offset")


def test_tiny_clouds_keep_everything():
    assert plane.remove_background_plane(np.zeros((2, 3), np.float32)).all()
