"""Thresholds recomputed through the deployed pipeline (``st3d-edge calibrate``), without torch.

The scans go through the bundle's own graph and the runtime's sampler, kNN, fill and image
score (:class:`st3d_edge.runtime.detector.Detector`), so the thresholds describe exactly what
the device computes. Decisions:

- Pixel threshold: :func:`~st3d_edge.calibration.thresholds.pixel_threshold` at ``pixel_fpr``
  over the runtime's score of every valid point of the good scans (the values the runtime
  compares with the pixel threshold), not only the sampled ones as training does.
- Image threshold, in this order: the value given (``image_threshold``); with defective scans
  and no ``image_fpr``, the one that maximises F1 of "anomalous" over good and defective scans
  (as anomalib's adaptive threshold; ties go to the highest, which rejects the fewest good
  parts); otherwise the good image scores at ``image_fpr`` (default 0: the largest good score,
  see :mod:`~st3d_edge.calibration.thresholds`). ``image_fpr`` is thus the target false-reject
  rate.
- The report gives, at the chosen thresholds, the observed false-reject rate (good scans called
  anomalous), the detection rate (defective scans called anomalous), the good points' pixel
  false-positive rate and, where masks are given, the share of defect points above the pixel
  threshold.
- The thresholds are written into the bundle's manifest under ``thresholds`` (the keys of
  ``thresholds.json``); the bundle's other files do not change. The report goes to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from st3d_edge.calibration.thresholds import DEFAULT_IMAGE_FPR, DEFAULT_PIXEL_FPR, threshold_at_fpr
from st3d_edge.errors import St3dError


@dataclass
class ScoredSet:
    """Scores of a set of scans through the deployed pipeline."""

    image_scores: list[float]
    point_scores: list[np.ndarray]  # per scan, every valid point
    point_gt: list[np.ndarray | None]  # per scan, aligned with point_scores; None: no mask


@dataclass
class Calibration:
    pixel: float
    image: float
    pixel_fpr: float
    image_rule: str  # "given", "f1" or "fpr"
    image_fpr: float | None
    good_scans: int
    good_points: int
    defective_scans: int
    false_reject_rate: float  # good scans with image score above the image threshold
    detection_rate: float | None  # defective scans above it
    pixel_false_positive_rate: float  # good points above the pixel threshold
    defect_pixel_rate: float | None  # defect points (masks) above the pixel threshold

    def thresholds(self) -> dict[str, float | int]:
        """The manifest's ``thresholds`` entry, the keys and meaning of ``thresholds.json``.

        Only numbers, as training writes; ``image_fpr`` is the false-reject rate the image
        threshold has on the good scans (the target itself under the "fpr" rule).
        """
        return {
            "image": self.image,
            "pixel": self.pixel,
            "pixel_fpr": self.pixel_fpr,
            "image_fpr": self.image_fpr if self.image_fpr is not None else self.false_reject_rate,
            "validation_scans": self.good_scans,
            "validation_points": self.good_points,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_scans(detector: Any, scans: Iterable[Any]) -> ScoredSet:
    """Score read ``Scan``s with ``detector``; their ground truth comes along per point."""
    image_scores, point_scores, point_gt = [], [], []
    for scan in scans:
        result = detector(scan)
        image_scores.append(float(result.image_score))
        point_scores.append(np.asarray(result.point_scores, dtype=np.float64))
        point_gt.append(_point_gt(scan))
    return ScoredSet(image_scores, point_scores, point_gt)


def _point_gt(scan: Any) -> np.ndarray | None:
    if scan.gt is None:
        return None
    if scan.pixels is None:
        return np.asarray(scan.gt, dtype=bool)
    return np.asarray(scan.gt[scan.pixels[:, 0], scan.pixels[:, 1]], dtype=bool)


def f1_threshold(good: np.ndarray, defective: np.ndarray) -> float:
    """The observed score t maximising F1 of ``score > t`` (defective = positive); ties: highest t."""
    scores = np.concatenate([good, defective])
    labels = np.concatenate([np.zeros(len(good), bool), np.ones(len(defective), bool)])
    best, best_t = -1.0, float(scores.max())
    for t in np.unique(scores):
        flagged = scores > t
        tp = int((flagged & labels).sum())
        f1 = 2 * tp / (flagged.sum() + labels.sum())
        if f1 >= best:
            best, best_t = f1, float(t)
    return best_t


def choose(
    good: ScoredSet,
    defective: ScoredSet | None = None,
    *,
    pixel_fpr: float = DEFAULT_PIXEL_FPR,
    image_fpr: float | None = None,
    image_threshold: float | None = None,
) -> Calibration:
    """Thresholds and their rates (see the module docstring)."""
    if not good.image_scores:
        raise St3dError("no good scans to calibrate on")
    good_points = np.concatenate(good.point_scores)
    good_images = np.asarray(good.image_scores)
    defect_images = np.asarray(defective.image_scores if defective else [], dtype=np.float64)
    pixel = threshold_at_fpr(good_points, pixel_fpr)
    if image_threshold is not None:
        image, rule = float(image_threshold), "given"
    elif defect_images.size and image_fpr is None:
        image, rule = f1_threshold(good_images, defect_images), "f1"
    else:
        image_fpr = DEFAULT_IMAGE_FPR if image_fpr is None else image_fpr
        image, rule = threshold_at_fpr(good_images, image_fpr), "fpr"
    masked = (
        [(s, g) for s, g in zip(defective.point_scores, defective.point_gt, strict=True)] if defective else []
    )
    defect_points = [s[g] for s, g in masked if g is not None and g.any()]
    return Calibration(
        pixel=pixel,
        image=image,
        pixel_fpr=pixel_fpr,
        image_rule=rule,
        image_fpr=image_fpr if rule == "fpr" else None,
        good_scans=len(good_images),
        good_points=int(good_points.size),
        defective_scans=int(defect_images.size),
        false_reject_rate=float((good_images > image).mean()),
        detection_rate=float((defect_images > image).mean()) if defect_images.size else None,
        pixel_false_positive_rate=float((good_points > pixel).mean()),
        defect_pixel_rate=float((np.concatenate(defect_points) > pixel).mean()) if defect_points else None,
    )


def write_thresholds(bundle: Any, thresholds: dict[str, Any], signing_key: str | Path | None = None) -> Any:
    """Rewrite the bundle's manifest with new thresholds (checksummed, re-signed with
    ``signing_key``); returns the updated Bundle (st3d_edge.runtime.bundle.rewrite_manifest)."""
    from st3d_edge.runtime.bundle import rewrite_manifest

    return rewrite_manifest(bundle, signing_key=signing_key, thresholds=dict(thresholds))


def calibrate_bundle(
    bundle: str | Path,
    good: Sequence[str | Path],
    *,
    defective: Sequence[str | Path] | None = None,
    masks: str | Path | None = None,
    pixel_fpr: float = DEFAULT_PIXEL_FPR,
    image_fpr: float | None = None,
    image_threshold: float | None = None,
    units: str = "m",
    intrinsics: Any = None,
    backend: str = "auto",
    geometry: str = "auto",
    write: bool = True,
    log: Callable[[str], None] | None = None,
    signing_key: str | Path | None = None,
) -> tuple[Calibration, dict[str, Any]]:
    """Score the scans with the bundle, choose thresholds, write them into its manifest.

    ``good`` and ``defective`` are files, folders or globs; a defective scan's mask is
    ``<masks>/<scan name>.png`` or ``.npy`` (MVTec's ``../gt/<name>.png`` without ``masks``).
    Returns the calibration and the thresholds the bundle had before.
    """
    from st3d_edge.console import track
    from st3d_edge.data.readers import read_scan
    from st3d_edge.data.scanlist import expand_scan_paths, mask_path
    from st3d_edge.errors import file_error
    from st3d_edge.runtime.detector import Detector

    masks = None if masks is None else Path(masks)
    if masks is not None and not masks.is_dir():
        raise file_error(masks, "masks folder not found")
    good_paths = expand_scan_paths(good)
    defect_paths = expand_scan_paths(defective) if defective else []
    detector = Detector(bundle, backend, geometry, units=units, intrinsics=intrinsics)
    if log is not None:
        log(detector.describe())

    def read(paths: list[Path], what: str, with_masks: bool):
        for path in track(paths, what):
            gt = mask_path(path, masks) if with_masks else None
            yield read_scan(path, units=units, intrinsics=intrinsics, gt_path=gt)

    good_set = score_scans(detector, read(good_paths, "good", False))
    defect_set = score_scans(detector, read(defect_paths, "defective", True)) if defect_paths else None
    calibration = choose(
        good_set, defect_set, pixel_fpr=pixel_fpr, image_fpr=image_fpr, image_threshold=image_threshold
    )
    old = dict(detector.bundle.thresholds)
    if write:
        write_thresholds(detector.bundle, calibration.thresholds(), signing_key)
    return calibration, old
