"""Scores for every valid pixel from the sampled points' scores (the runtime's choice).

Inverse-distance weighting over the ``neighbours`` nearest sampled points, weights
``1 / d**power``. A query point that coincides with sampled points (d == 0) takes their score
(their mean, if several sampled points share the position) instead of dividing by zero.
Harmonic interpolation stays the evaluation's choice (st3d_edge.evaluation.harmonic); this
is the fast rule the edge uses, and the GPU kernel follows the same rule.
"""

from __future__ import annotations

import numpy as np

from st3d_edge.geometry._checks import as_cloud


def idw_fill(
    sample_points,
    sample_scores,
    query_points,
    neighbours: int = 4,
    power: float = 2.0,
    use_pykdtree: bool | None = None,
):
    """float32[q] scores at ``query_points``, interpolated from the samples by a kd-tree
    (``use_pykdtree``: see :func:`st3d_edge.geometry.kdtree.query_nearest`)."""
    from st3d_edge.geometry.kdtree import query_nearest

    samples = as_cloud(sample_points, "sample_points")
    queries = as_cloud(query_points, "query_points")
    scores = np.asarray(sample_scores, dtype=np.float64)
    if scores.shape != (len(samples),):
        raise ValueError(f"sample_scores must have shape ({len(samples)},), got {scores.shape}")
    if neighbours < 1:
        raise ValueError(f"neighbours must be >= 1, got {neighbours}")
    if len(queries) == 0:
        return np.empty(0, dtype=np.float32)
    if len(samples) == 0:
        raise ValueError("idw_fill needs at least one sampled point")
    k = min(neighbours, len(samples))
    dist, idx = query_nearest(samples, queries, k, use_pykdtree=use_pykdtree)
    near = scores[idx]
    hit = dist == 0.0
    with np.errstate(divide="ignore"):
        weight = 1.0 / dist**power
    weight[hit] = 0.0
    filled = (weight * near).sum(axis=1) / np.where(hit.any(axis=1), 1.0, weight.sum(axis=1))
    exact = hit.any(axis=1)
    filled[exact] = (near * hit).sum(axis=1)[exact] / hit.sum(axis=1)[exact]
    return filled.astype(np.float32)
