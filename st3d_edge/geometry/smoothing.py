"""The image score: one number per scan, compared with the image threshold.

Decision (the paper reports image AUROC but does not say how the map is reduced): the
maximum over points of the mean score of each point's first ``neighbours`` kNN entries
(itself and its nearest neighbours). A defect covers a patch of points, so its neighbourhood
mean stays high, while a single noisy point is averaged down by its neighbours and does not
decide the verdict alone.
"""

from __future__ import annotations

import numpy as np

# The neighbour count of the image score: training calibrates the image threshold with it,
# the export bundle records it, and evaluation and the runtime score with it.
IMAGE_SCORE_NEIGHBOURS = 8


def image_score(points, scores, knn, neighbours: int = IMAGE_SCORE_NEIGHBOURS) -> float:
    """max over points of mean(scores[knn[p, :neighbours]])."""
    scores = np.asarray(scores, dtype=np.float64)
    knn = np.asarray(knn)
    if knn.ndim != 2 or len(knn) != len(scores) or len(np.asarray(points)) != len(scores):
        raise ValueError(
            f"points, scores and knn must describe the same points: "
            f"{len(np.asarray(points))}, {scores.shape}, {knn.shape}"
        )
    if len(scores) == 0:
        raise ValueError("image_score needs at least one point")
    if neighbours < 1:
        raise ValueError(f"neighbours must be >= 1, got {neighbours}")
    smoothed = scores[knn[:, :neighbours]].mean(axis=1)
    return float(smoothed.max())
