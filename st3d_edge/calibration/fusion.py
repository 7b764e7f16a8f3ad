"""Fusing the student's regression error with the geometric (FPFH memory-bank) score.

The two scores live on unrelated scales, so each is standardised by its own statistics on the
good validation scans (the points the network scored there), then they are summed with fixed
weights:

    fused(p) = w_s * (student(p) - loc_s) / scale_s + w_g * (geometric(p) - loc_g) / scale_g

Decisions:

* Statistics come from good validation scans only (no defect is ever needed), the same points
  the thresholds are calibrated on, so no category needs tuning by hand. ``tail`` (the default):
  location and scale are the median and the distance from it to the 99.9th percentile, so a
  score whose good points have a long tail (the student's, at the rims of missing-data holes)
  is scaled by that tail; ``std``: the mean and standard deviation.
* Weights (1, 1): with the shipped teacher (depth-camera scenes), on the four tuning categories
  and image score = the highest point score, the geometric score alone gave mean AU-PRO 0.889 /
  I-AUROC 0.980, the student alone 0.865 / 0.897, tail-standardised (0.25, 1) 0.932 / 0.970,
  (0.5, 1) 0.948 / 0.970, (1, 1) 0.952 / 0.978 (benchmarks/fusion_weights.py); the image
  score has since become the highest 8-neighbour mean (calibration.scoring.IMAGE_NEIGHBOURS).
  With the earlier, collapsed teacher the student alone reached 0.731 / 0.683 and had a quarter
  of the weight.
* The weights and the standardisation are shipped settings (:data:`DEFAULT_WEIGHTS`,
  :data:`DEFAULT_STANDARDISATION`), chosen on the tuning categories of the accuracy benchmark
  and reported against held-out ones (see the README).
* ``weights = (1, 0)`` is the paper's 3D-ST alone, up to an affine map (which changes no
  metric); it stays selectable as scoring ``student``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_WEIGHTS = (1.0, 1.0)  # (student, geometric), see the module docstring
DEFAULT_STANDARDISATION = "tail"
TAIL_QUANTILE = 0.999
SCORINGS = ("fused", "student")


@dataclass(frozen=True)
class Fusion:
    student_location: float
    student_scale: float
    geometric_location: float
    geometric_scale: float
    student_weight: float = DEFAULT_WEIGHTS[0]
    geometric_weight: float = DEFAULT_WEIGHTS[1]

    def __call__(self, student: np.ndarray, geometric: np.ndarray) -> np.ndarray:
        student = np.asarray(student, dtype=np.float32)
        geometric = np.asarray(geometric, dtype=np.float32)
        if student.shape != geometric.shape:
            raise ValueError(f"score shapes differ: {student.shape} and {geometric.shape}")
        s = (student - np.float32(self.student_location)) / np.float32(self.student_scale)
        g = (geometric - np.float32(self.geometric_location)) / np.float32(self.geometric_scale)
        return np.float32(self.student_weight) * s + np.float32(self.geometric_weight) * g

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Fusion:
        fields = {k: float(data[k]) for k in cls.__dataclass_fields__ if k in data}
        fusion = cls(**fields)
        fusion.check()
        return fusion

    def check(self) -> None:
        values = asdict(self)
        if not all(np.isfinite(v) for v in values.values()):
            raise ValueError(f"fusion settings must be finite numbers: {values}")
        if self.student_scale <= 0 or self.geometric_scale <= 0:
            raise ValueError(f"fusion scales must be positive: {values}")


def location_scale(scores: np.ndarray, standardisation: str = DEFAULT_STANDARDISATION) -> tuple[float, float]:
    """(location, scale) of good scores: ``std`` mean and standard deviation; ``tail`` the median
    and the distance from it to the :data:`TAIL_QUANTILE` quantile."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    floor = 1e-12  # a constant score (e.g. a single repeated training scan) must not divide by zero
    if standardisation == "std":
        return float(scores.mean()), float(max(scores.std(), floor))
    if standardisation == "tail":
        median = float(np.median(scores))
        return median, float(max(np.quantile(scores, TAIL_QUANTILE) - median, floor))
    raise ValueError(f"unknown standardisation {standardisation!r}; choose std or tail")


def fit_fusion(
    student_scores: np.ndarray,
    geometric_scores: np.ndarray,
    weights: tuple[float, float] = DEFAULT_WEIGHTS,
    standardisation: str = DEFAULT_STANDARDISATION,
) -> Fusion:
    """Standardisation of both scores from the good validation points (see the module docstring)."""
    student = np.asarray(student_scores, dtype=np.float64).ravel()
    geometric = np.asarray(geometric_scores, dtype=np.float64).ravel()
    if student.size == 0 or student.size != geometric.size:
        raise ValueError(f"need the same points for both scores, got {student.size} and {geometric.size}")
    fusion = Fusion(
        *location_scale(student, standardisation),
        *location_scale(geometric, standardisation),
        float(weights[0]),
        float(weights[1]),
    )
    fusion.check()
    return fusion
