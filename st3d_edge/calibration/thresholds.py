"""Anomaly thresholds chosen on the validation split of good scans (the paper sets none).

A point (pixel) or image is called anomalous when its score is **strictly greater** than the
threshold. Decisions:

- Pixel threshold: the smallest observed good score t such that at most ``fpr`` of the good
  validation scores lie above t (default ``fpr = 0.01``: one good point in a hundred may be
  flagged, the usual operating point of industrial inspection; AU-PRO is also integrated up
  to a false-positive rate of 0.3, so 0.01 sits well inside the evaluated range). The scores
  are those of the n sampled points of each good validation scan, i.e. what the network
  actually scored; the runtime's filled-in pixels inherit those values, so the rate carries over.
- Image threshold: the same rule on the validation image scores with default ``fpr = 0.0``,
  i.e. the largest good validation image score. Validation sets hold few scans (tens), so any
  rate above 1/count would be an arbitrary cut; the maximum is the one choice that lets every
  good validation scan pass.
- Stored as JSON (``thresholds.json``) with the rates and the counts they came from.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from st3d_edge.errors import file_error
from st3d_edge.geometry.smoothing import IMAGE_SCORE_NEIGHBOURS
from st3d_edge.io_utils import write_json_atomic

DEFAULT_PIXEL_FPR = 0.01
DEFAULT_IMAGE_FPR = 0.0


def threshold_at_fpr(good_scores, fpr: float) -> float:
    """Smallest good score t with ``mean(good_scores > t) <= fpr``."""
    scores = np.asarray(good_scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError("no good scores to choose a threshold from")
    if not np.isfinite(scores).all():
        raise ValueError("good scores contain NaN or infinity")
    if not 0.0 <= fpr < 1.0:
        raise ValueError(f"false-positive rate must be in [0, 1), got {fpr}")
    ordered = np.sort(scores)
    allowed_above = math.floor(fpr * ordered.size + 1e-9)
    return float(ordered[ordered.size - 1 - allowed_above])


def pixel_threshold(good_scores, fpr: float = DEFAULT_PIXEL_FPR) -> float:
    return threshold_at_fpr(good_scores, fpr)


def image_threshold(good_image_scores, fpr: float = DEFAULT_IMAGE_FPR) -> float:
    return threshold_at_fpr(good_image_scores, fpr)


@dataclass
class Thresholds:
    pixel: float
    image: float
    pixel_fpr: float = DEFAULT_PIXEL_FPR
    image_fpr: float = DEFAULT_IMAGE_FPR
    validation_scans: int = 0
    validation_points: int = 0
    # the image score's neighbour count the image threshold was calibrated with (files
    # written before it was recorded were calibrated with the old fixed count)
    image_neighbours: int = IMAGE_SCORE_NEIGHBOURS

    def as_dict(self) -> dict:
        return asdict(self)


def save_thresholds(path: str | Path, thresholds: Thresholds) -> Path:
    return write_json_atomic(path, thresholds.as_dict())


def load_thresholds(path: str | Path) -> Thresholds:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        result = Thresholds(
            pixel=float(data["pixel"]),
            image=float(data["image"]),
            pixel_fpr=float(data.get("pixel_fpr", DEFAULT_PIXEL_FPR)),
            image_fpr=float(data.get("image_fpr", DEFAULT_IMAGE_FPR)),
            validation_scans=int(data.get("validation_scans", 0)),
            validation_points=int(data.get("validation_points", 0)),
            image_neighbours=int(data.get("image_neighbours", IMAGE_SCORE_NEIGHBOURS)),
        )
    except FileNotFoundError:
        raise file_error(path, "file not found") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise file_error(
            path, "not a thresholds file (expected JSON with numbers 'pixel' and 'image')"
        ) from None
    if not (math.isfinite(result.pixel) and math.isfinite(result.image)):
        raise file_error(path, "thresholds must be finite numbers")
    return result
