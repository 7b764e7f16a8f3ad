"""Check clouds: small inputs and onnxruntime's scores for them, stored in the bundle at export.

An engine built on the device is run on them before it is kept; scores that drift from the
stored ones beyond the precision's bound mean the engine does not compute what was exported,
and it is refused. Files (plain ``.npy``, checksummed by the manifest like every other file):

``check_points.npy``       float32 (total, 3): the clouds one after another
``check_knn.npy``          int32 (total, k): each cloud's kNN graph, indices local to the cloud
``check_sizes.npy``        int64 (clouds,): points per cloud
``check_scores_fp32.npy``  float32 (total,): onnxruntime's scores of the FP32 graph
``check_scores_fp16.npy``  the same for the FP16 graph, when the bundle has one

Bounds (:data:`ENGINE_DRIFT_LIMITS`, max relative error as :func:`relative_error` defines it),
the engine against onnxruntime running the ONNX graph of the same precision:

- ``fp32``: 1e-2. TensorRT runs FP32 matrix products in TF32 on Ampere and later GPUs (Jetson
  Orin included) unless told otherwise, which keeps 10 mantissa bits: about 1e-3 per product,
  and eight LFA layers add up.
- ``fp16``: 5e-2. Both sides compute in FP16 but accumulate differently (onnxruntime's CPU
  kernels widen to FP32); the FP16 graph itself drifts 4.4e-2 from the FP32 graph on the
  demo's trained model, so a difference of that size between two FP16 kernels is expected.

A wrong engine (a broken layer, an overflow to inf, scores of another model) misses these
bounds by orders of magnitude.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from st3d_edge.errors import file_error

POINTS_FILE = "check_points.npy"
KNN_FILE = "check_knn.npy"
SIZES_FILE = "check_sizes.npy"
SCORES_FILES = {"fp32": "check_scores_fp32.npy", "fp16": "check_scores_fp16.npy"}
ENGINE_DRIFT_LIMITS = {"fp32": 1e-2, "fp16": 5e-2}


def relative_error(actual, expected) -> float:
    """Max over points of |actual - expected| / max(|expected|, 1e-3 * median |expected|).

    The floor keeps points whose score is almost exactly zero (a student that matches the
    teacher perfectly) from turning a rounding difference into a huge ratio.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {e.shape}")
    if e.size == 0:
        return 0.0
    if not np.isfinite(a).all():
        return float("inf")
    floor = max(1e-3 * float(np.median(np.abs(e))), np.finfo(np.float32).tiny)
    return float(np.max(np.abs(a - e) / np.maximum(np.abs(e), floor)))


@dataclass(frozen=True)
class CheckClouds:
    """The check clouds as (points, knn) pairs and the reference scores per precision."""

    clouds: list[tuple[np.ndarray, np.ndarray]]
    scores: dict[str, list[np.ndarray]]


@dataclass(frozen=True)
class CheckResult:
    precision: str
    clouds: int
    points: int
    max_relative_error: float
    limit: float

    @property
    def passed(self) -> bool:
        return self.max_relative_error <= self.limit

    def as_dict(self) -> dict:
        return {
            "precision": self.precision,
            "clouds": self.clouds,
            "points": self.points,
            "max_relative_error": self.max_relative_error,
            "limit": self.limit,
        }


def write_check_clouds(folder: str | Path, checks: CheckClouds) -> list[str]:
    """Write the check files into ``folder`` (a bundle being written); return their names."""
    folder = Path(folder)
    sizes = np.array([len(points) for points, _ in checks.clouds], dtype=np.int64)
    arrays = {
        POINTS_FILE: np.concatenate([p for p, _ in checks.clouds]).astype(np.float32),
        KNN_FILE: np.concatenate([q for _, q in checks.clouds]).astype(np.int32),
        SIZES_FILE: sizes,
    }
    for precision, scores in checks.scores.items():
        arrays[SCORES_FILES[precision]] = np.concatenate(scores).astype(np.float32)
    for name, array in arrays.items():
        np.save(folder / name, array, allow_pickle=False)
    return list(arrays)


def read_check_clouds(folder: str | Path, listed: set[str], precision: str) -> CheckClouds:
    """The check clouds of a verified bundle and the reference scores of ``precision``.

    ``listed`` is the set of file names the manifest checksums (``Bundle.files``): a file
    outside it is not trusted, so a bundle from before check clouds is refused here.
    """
    folder = Path(folder)
    names = (POINTS_FILE, KNN_FILE, SIZES_FILE, SCORES_FILES[precision])
    missing = [name for name in names if name not in listed]
    if missing:
        raise file_error(
            folder,
            f"has no check clouds for {precision} ({', '.join(missing)}); export the bundle again "
            f"with `st3d-edge export{' --precision fp16' if precision == 'fp16' else ''}` and this version",
        )
    try:
        points, knn, sizes, scores = (np.load(folder / name, allow_pickle=False) for name in names)
    except (OSError, ValueError) as exc:
        raise file_error(folder, f"cannot read its check clouds ({exc})") from None
    total = int(sizes.sum())
    if sizes.ndim != 1 or len(points) != total or len(knn) != total or len(scores) != total:
        raise file_error(folder, "its check clouds have inconsistent sizes; export the bundle again")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    parts = list(zip(bounds[:-1], bounds[1:], strict=True))
    return CheckClouds(
        clouds=[(points[a:b], knn[a:b]) for a, b in parts],
        scores={precision: [scores[a:b] for a, b in parts]},
    )


def compare(
    run: Callable[[np.ndarray, np.ndarray], np.ndarray],
    checks: CheckClouds,
    precision: str,
    *,
    sizes: tuple[int, int] | None = None,
) -> CheckResult:
    """Run ``run(points, knn)`` on the check clouds and measure it against the stored scores.

    ``sizes`` (smallest, largest) skips clouds outside an engine's optimization profile; at
    least one cloud must remain.
    """
    worst, count, total = 0.0, 0, 0
    for (points, knn), expected in zip(checks.clouds, checks.scores[precision], strict=True):
        if sizes is not None and not sizes[0] <= len(points) <= sizes[1]:
            continue
        worst = max(worst, relative_error(np.asarray(run(points, knn)), expected))
        count += 1
        total += len(points)
    if count == 0:
        raise ValueError(f"no check cloud has a size within {sizes}")
    return CheckResult(precision, count, total, worst, ENGINE_DRIFT_LIMITS[precision])
