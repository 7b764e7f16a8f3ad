"""Image-level AUROC.

The AUROC is the Mann-Whitney statistic: the probability that a random defective image scores
higher than a random good one, ties counting one half. That equals the trapezoidal area under
the ROC curve whose tied scores are merged into one point, as the official MVTec 3D-AD script
computes it. The image score fed in is chosen by the caller; the evaluation runner uses
``st3d_edge.geometry.smoothing.image_score`` on the per-point scores (the maximum over points
of the mean score of each point's nearest neighbours), the same reduction the runtime uses.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def image_auroc(scores, labels) -> float:
    """AUROC of image scores against labels (True / nonzero = defective)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.size} scores but {labels.size} labels")
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        raise ValueError("image AUROC needs at least one good and one defective image")
    ranks = rankdata(scores, method="average")
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))
