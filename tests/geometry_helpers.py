"""Shared pieces of the geometry tests: a scan-like surface and the tolerances they need."""

from __future__ import annotations

import numpy as np

# Both sides compute in float64 from the same float32 inputs, in a different order.
FLOAT64_SAME_MATH = dict(rtol=1e-12, atol=1e-15)


def assert_same_neighbours_up_to_ties(fast, slow_one_more) -> None:
    """Equal distances; equal index sets on rows where the k-th and (k+1)-th are not tied.

    ``fast``: (distances, indices) of k neighbours; ``slow_one_more``: the reference's k + 1.
    """
    from tests.helpers import assert_close

    (dist_a, idx_a), (dist_b, idx_b) = fast, slow_one_more
    k = idx_a.shape[1]
    assert_close(dist_a, dist_b[:, :k], **FLOAT64_SAME_MATH, what="distances")
    clear = dist_b[:, k - 1] < dist_b[:, k]  # either side may keep either of two tied points
    assert clear.mean() > 0.9
    assert np.array_equal(np.sort(idx_a[clear], axis=1), np.sort(idx_b[clear, :k], axis=1))


def height_field(n_points: int, seed: int = 0) -> np.ndarray:
    """``n_points`` float32 points of a 10 cm height field seen on a pixel grid, like a scan.

    Smooth waves plus a bump (steep and flat regions), a random 10 % of pixels missing and
    20 micrometre noise, so the points are on a surface but not on an exact lattice.
    """
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_points / 0.9)))
    u, v = np.meshgrid(np.linspace(0, 0.1, side), np.linspace(0, 0.1, side), indexing="ij")
    bump = 0.02 * np.exp(-((u - 0.05) ** 2 + (v - 0.04) ** 2) / 0.0004)
    z = 0.01 * np.sin(40 * u) * np.cos(30 * v) + bump
    grid = np.stack([u, v, z], axis=-1).reshape(-1, 3)
    keep = np.sort(rng.permutation(len(grid))[:n_points])
    return (grid[keep] + rng.normal(0.0, 2e-5, (n_points, 3))).astype(np.float32)


def first_divergence(a, b) -> int:
    """Index of the first position where two index sequences differ, or -1."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"lengths differ: {a.shape} vs {b.shape}"
    diff = np.flatnonzero(a != b)
    return int(diff[0]) if len(diff) else -1


def assert_same_fps(points, fast, reference, what: str) -> None:
    """Two FPS sequences agree, except after a float32 near-tie between two candidates.

    At the first differing step both candidates must be (nearly) equally far from the common
    prefix, within float32 rounding of the squared distance; otherwise the fast one is wrong.
    """
    at = first_divergence(fast, reference)
    if at < 0:
        return
    cloud = np.asarray(points, dtype=np.float64)
    prefix = cloud[np.asarray(reference[:at])]
    far = [((cloud[i] - prefix) ** 2).sum(axis=1).min() for i in (fast[at], reference[at])]
    scale = max(far[1], np.finfo(np.float32).tiny)
    assert abs(far[0] - far[1]) <= 4 * np.finfo(np.float32).eps * scale, (
        f"{what}: step {at} picked {fast[at]} (distance^2 {far[0]}) instead of {reference[at]} "
        f"(distance^2 {far[1]}), not a tie"
    )
