"""Optional removal of the background plane (the table under the part), off by default.

The paper feeds whole scans to the network and does not remove the plane; some MVTec 3D-AD
pipelines do. The defaults follow the common MVTec 3D-AD preprocessing: RANSAC with three-point
hypotheses, a 5 mm inlier distance and 1000 iterations. Decisions left open there:

- Hypotheses are scored on a random subset of at most 20000 points (scoring 1000 planes against
  a full 800x800 scan would take minutes); the best plane is then refitted by least squares to
  all its inliers, and the final inliers are counted on every point.
- The generator is seeded (``seed``), so the same cloud always gives the same mask.
"""

from __future__ import annotations

import numpy as np

DEFAULT_DISTANCE = 0.005  # metres
DEFAULT_ITERATIONS = 1000
SCORING_POINTS = 20000


def fit_plane(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane ``n . p + d = 0`` (unit n) through ``points``."""
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre, full_matrices=False)
    normal = vt[-1]
    return normal, -float(normal @ centre)


def remove_background_plane(
    points: np.ndarray,
    distance: float = DEFAULT_DISTANCE,
    iterations: int = DEFAULT_ITERATIONS,
    seed: int = 0,
) -> np.ndarray:
    """``keep`` mask: True for points farther than ``distance`` from the dominant plane."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 3:
        return np.ones(len(pts), dtype=bool)
    rng = np.random.default_rng(seed)
    subset = pts[rng.choice(len(pts), min(len(pts), SCORING_POINTS), replace=False)]
    triples = pts[rng.integers(0, len(pts), (iterations, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    ok = lengths > 1e-12  # skip collinear triples
    if not ok.any():
        return np.ones(len(pts), dtype=bool)
    normals = normals[ok] / lengths[ok, None]
    offsets = -np.einsum("ij,ij->i", normals, triples[ok, 0])
    best, best_count = 0, -1
    for start in range(0, len(normals), 64):  # bounded memory: 64 planes x subset at a time
        dist = np.abs(subset @ normals[start : start + 64].T + offsets[start : start + 64])
        counts = (dist <= distance).sum(axis=0)
        i = int(np.argmax(counts))
        if counts[i] > best_count:
            best, best_count = start + i, int(counts[i])
    inliers = np.abs(pts @ normals[best] + offsets[best]) <= distance
    if inliers.sum() >= 3:
        normal, offset = fit_plane(pts[inliers])
        inliers = np.abs(pts @ normal + offset) <= distance
    return ~inliers
