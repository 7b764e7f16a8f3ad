"""Per-region overlap (PRO) curve and its normalised area, as the official MVTec 3D-AD evaluation.

Decisions, all taken to match MVTec's own evaluation script so numbers are comparable:

* Regions are the connected components of each ground-truth mask under **8-connectivity**
  (the official code passes ``structure=np.ones((3, 3))`` to ``scipy.ndimage.label``).
* A pixel is a candidate false positive when it lies outside every region, in any image:
  the false positive rate counts the good pixels of defective images too.
* Thresholds are every distinct anomaly score (a pixel is positive when ``score >= t``). At a
  threshold the PRO is the overlap of the positives with each region, averaged over all
  regions of all images (each region weighs the same, whatever its size).
* The curve starts at (0, 0) and ends at (1, 1). The area is integrated with the trapezoidal
  rule up to the FPR limit; at the limit the PRO is interpolated linearly between the two
  neighbouring curve points; the area is divided by the limit, so a perfect map scores 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

LIMITS = (0.01, 0.05, 0.1, 0.2, 0.3, 1.0)
HEADLINE_LIMIT = 0.3
EIGHT_CONNECTED = np.ones((3, 3), dtype=int)


def label_regions(gt: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of a ground-truth mask (8-connectivity), labels 1..count."""
    labels, count = ndimage.label(np.asarray(gt, dtype=bool), structure=EIGHT_CONNECTED)
    return labels, int(count)


def pro_curve(maps: Sequence[np.ndarray], gts: Sequence[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, pro) points for falling thresholds; ``gts[i]`` None means an image without defects.

    One sort of all scores and two cumulative sums: each pixel adds 1 to the false positive
    count (good pixels) or 1/|region| to its region's overlap (defect pixels) as the
    threshold falls past its score; of each run of tied scores only the last point is kept.
    """
    if len(maps) != len(gts) or not maps:
        raise ValueError(f"need the same non-zero number of maps and masks, got {len(maps)} and {len(gts)}")
    scores, fp_step, pro_step = [], [], []
    regions = 0
    for anomaly_map, gt in zip(maps, gts, strict=True):
        anomaly_map = np.asarray(anomaly_map, dtype=np.float64)
        if gt is None:
            labels, count = np.zeros(anomaly_map.shape, dtype=np.int32), 0
        else:
            if np.shape(gt) != anomaly_map.shape:
                raise ValueError(f"map {anomaly_map.shape} and mask {np.shape(gt)} differ in shape")
            labels, count = label_regions(gt)
        sizes = np.bincount(labels.ravel(), minlength=count + 1).astype(np.float64)
        weight = np.zeros(count + 1)
        weight[1:] = 1.0 / sizes[1:]
        scores.append(anomaly_map.ravel())
        fp_step.append((labels == 0).ravel())
        pro_step.append(weight[labels.ravel()])
        regions += count

    scores = np.concatenate(scores)
    fp_step = np.concatenate(fp_step)
    pro_step = np.concatenate(pro_step)
    good = int(fp_step.sum())
    if regions == 0:
        raise ValueError("no ground-truth region in any image: the PRO curve is undefined")
    if good == 0:
        raise ValueError("no pixel outside the ground-truth regions: the false positive rate is undefined")

    order = np.argsort(-scores, kind="stable")
    scores = scores[order]
    fpr = np.cumsum(fp_step[order], dtype=np.int64) / good
    pro = np.cumsum(pro_step[order]) / regions
    last_of_tie = np.append(scores[1:] != scores[:-1], True)
    fpr = np.minimum(fpr[last_of_tie], 1.0)
    pro = np.minimum(pro[last_of_tie], 1.0)
    return np.concatenate([[0.0], fpr, [1.0]]), np.concatenate([[0.0], pro, [1.0]])


def area_to_limit(x: np.ndarray, y: np.ndarray, limit: float) -> float:
    """Trapezoidal area under y(x) for x in [x[0], limit]; x ascending (repeats allowed)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if not 0.0 < limit <= x[-1]:
        raise ValueError(f"integration limit {limit} outside (0, {x[-1]}]")
    correction = 0.0
    if limit not in x:
        ins = int(np.searchsorted(x, limit, side="right"))  # bisect_right
        y_at = y[ins - 1] + (y[ins] - y[ins - 1]) * (limit - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_at + y[ins - 1]) * (limit - x[ins - 1])
    inside = x <= limit
    x, y = x[inside], y[inside]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)) + correction)


def au_pro(
    maps: Sequence[np.ndarray], gts: Sequence[np.ndarray | None], limit: float = HEADLINE_LIMIT
) -> float:
    """Area under the PRO curve up to an FPR of ``limit``, divided by ``limit`` (in [0, 1])."""
    fpr, pro = pro_curve(maps, gts)
    return area_to_limit(fpr, pro, limit) / limit


def au_pro_at_limits(
    fpr: np.ndarray, pro: np.ndarray, limits: Sequence[float] = LIMITS
) -> dict[float, float]:
    """Normalised AU-PRO of one curve at several limits (the curve is computed once)."""
    return {float(lim): area_to_limit(fpr, pro, lim) / lim for lim in limits}
