"""One scan through the edge pipeline: TIFF -> valid points -> n samples -> kNN -> scores -> map.

Decisions the paper leaves open, as taken here:

* Sampling uses the bundle's sampler (the one the model was trained with) to
  ``min(n, valid points)`` points; a scan with fewer valid points than n is used whole. A scan
  with fewer than k + 1 valid points has no kNN graph and is rejected with a one-line error, as
  is one with fewer valid points than the backend's smallest input (``min_n``: a TensorRT
  engine's optimization profile minimum, 1024 by default). On the CPU the sampled points come
  in locality order (:mod:`st3d_edge.geometry.locality`), not in the sampler's order: the same
  points, with neighbours close in memory. With the fused score, one kd-tree query gives the
  kNN graph and the geometric score's 100 nearest (the same neighbours as two queries, up to
  the order of exactly equidistant points).
* The anomaly score of a sampled point is the bundle's scoring (``fused`` by default: the
  graph's student error fused with the geometric FPFH memory-bank score, timed as the stage
  ``geometric``; ``student``: the graph's output as is), see :mod:`st3d_edge.calibration.scoring`.
* Every valid pixel gets a score by inverse-distance weighting over its 4 nearest sampled
  points in 3D (weights 1/d^2; a pixel on sampled points takes their mean score), see
  :mod:`st3d_edge.runtime.geometry_backend`. On the CPU an organized scan finds them through
  its image (:mod:`st3d_edge.geometry.grid_fill`: the same values as the kd-tree, faster).
* The anomaly map is H x W float32 with invalid pixels 0 (:mod:`st3d_edge.runtime.outputs`).
  An unorganized scan (PLY, PCD, N x 3; :mod:`st3d_edge.data.readers`) has no pixel grid: its
  map is ``point_scores``, one score per valid point, and ``anomaly_map`` and ``valid`` are None.
* The image score is the maximum over sampled points of the mean score of each point's
  nearest neighbours (st3d_edge.geometry.smoothing.image_score), as many as the bundle's
  manifest records (``image_score.neighbours``, the count the image threshold was calibrated
  with; ``IMAGE_SCORE_NEIGHBOURS`` of that module when it records none). The verdict is
  ``anomalous`` when it exceeds the bundle's image threshold, ``good`` otherwise, ``unknown``
  when the bundle has no threshold. Pixels above the pixel threshold are counted as ``anomalous_pixels``.
* A scan the model cannot judge is rejected, not scored: coordinates out of range or non-finite
  scores (:mod:`st3d_edge.runtime.scan_checks`), or a point spacing far from the bundle's s, a
  unit mix-up (:mod:`st3d_edge.runtime.spacing`, checked after the kNN stage).
* Stage times (ms): read, sample, knn, inference, fill, image_score; the map assembly is part of
  ``fill``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from st3d_edge.errors import St3dError, file_error
from st3d_edge.geometry.smoothing import IMAGE_SCORE_NEIGHBOURS
from st3d_edge.runtime.backends import Selection, select_backend
from st3d_edge.runtime.geometry_backend import CpuGeometry, call, fill_scan
from st3d_edge.runtime.scan_checks import check_coordinates, check_scores
from st3d_edge.runtime.timing import StageClock

VERDICT_GOOD = "good"
VERDICT_ANOMALOUS = "anomalous"
VERDICT_UNKNOWN = "unknown"


@dataclass
class ScanResult:
    path: Path
    anomaly_map: np.ndarray | None  # (H, W) float32, invalid pixels 0; None when unorganized
    valid: np.ndarray | None  # (H, W) bool: the pixels that were scored; None when unorganized
    points: np.ndarray  # (m, 3) float32: the scored points, row-major
    point_scores: np.ndarray  # (m,) float32: the score of every valid point, row-major
    image_score: float
    verdict: str
    ms: dict[str, float] = field(default_factory=dict)
    valid_points: int = 0
    sampled_points: int = 0
    anomalous_pixels: int | None = None
    spacing: float | None = None  # the scan's point spacing, measured as the bundle's s was

    @property
    def total_ms(self) -> float:
        return float(sum(self.ms.values()))

    def record(self) -> dict:
        """The JSON line ``infer`` appends to results.jsonl."""
        return {
            "file": str(self.path),
            "image_score": float(self.image_score),
            "verdict": self.verdict,
            "ms": {k: round(v, 3) for k, v in self.ms.items()},
            "total_ms": round(self.total_ms, 3),
            "valid_points": self.valid_points,
            "sampled_points": self.sampled_points,
            "anomalous_pixels": self.anomalous_pixels,
            "spacing": None if self.spacing is None else float(f"{self.spacing:.6g}"),
        }


def bundle_thresholds(bundle: Any) -> tuple[float | None, float | None]:
    """(image threshold, pixel threshold) of a bundle; None where it has none."""
    thresholds = getattr(bundle, "thresholds", None) or {}
    if not isinstance(thresholds, dict):
        thresholds = vars(thresholds)

    def pick(*keys: str) -> float | None:
        for key in keys:
            value = thresholds.get(key)
            if value is not None:
                return float(value)
        return None

    return pick("image", "image_threshold"), pick("pixel", "pixel_threshold")


def bundle_image_neighbours(bundle: Any) -> int:
    """The image score's neighbour count recorded in the bundle's manifest (the calibrated one)."""
    settings = getattr(bundle, "image_score", None) or {}
    value = settings.get("neighbours", IMAGE_SCORE_NEIGHBOURS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        where = getattr(bundle, "path", "the bundle")
        raise file_error(where, f"image_score.neighbours must be a positive integer, not {value!r}")
    return value


def _scoring(bundle: Any):
    """The bundle's scoring; a stand-in bundle without a manifest scores with the student alone."""
    from st3d_edge.calibration.scoring import STUDENT_ONLY
    from st3d_edge.runtime.bundle import Bundle, bundle_scoring

    return bundle_scoring(bundle) if isinstance(bundle, Bundle) else STUDENT_ONLY


def verdict_for(image_score: float, image_threshold: float | None) -> str:
    if image_threshold is None:
        return VERDICT_UNKNOWN
    return VERDICT_ANOMALOUS if image_score > image_threshold else VERDICT_GOOD


class ScanScorer:
    """Scores scans with one bundle, one inference backend and one geometry backend.

    ``bundle`` needs ``n``, ``k``, ``sampler`` and ``thresholds`` (``image_score`` is optional);
    ``backend`` needs ``run(points, knn) -> scores``; ``geometry`` is a geometry backend (CPU by
    default); ``scoring`` (a ``calibration.scoring.Scoring``) turns the graph's output into the
    anomaly score, by default the one the bundle's manifest records.
    """

    def __init__(
        self, bundle: Any, backend: Any, geometry: Any | None = None, scoring: Any | None = None
    ) -> None:
        self.bundle = bundle
        self.backend = backend
        self.geometry = geometry if geometry is not None else CpuGeometry()
        self.n = int(bundle.n)
        self.k = int(bundle.k)
        self.sampler = str(getattr(bundle, "sampler", "fps") or "fps")
        self.image_threshold, self.pixel_threshold = bundle_thresholds(bundle)
        self.image_neighbours = bundle_image_neighbours(bundle)
        self.scoring = scoring if scoring is not None else _scoring(bundle)
        s = getattr(bundle, "s", None)
        self.s = float(s) if s is not None else None

    def _check_spacing(self, path: Any, sampled: Any, knn: Any) -> float | None:
        """The scan's point spacing; refuses a scan in other units than the model's."""
        from st3d_edge.runtime.spacing import CHECK_ROWS, check_spacing, scan_spacing

        if self.s is None:
            return None
        host_points = call(self.geometry, "to_host", sampled)
        rows = call(self.geometry, "to_host", knn[:CHECK_ROWS])
        spacing = scan_spacing(host_points, rows)
        check_spacing(path, spacing, self.s)
        return spacing

    def _clock(self) -> StageClock:
        sync = (
            getattr(self.geometry, "synchronize", None)
            if getattr(self.geometry, "on_device", False)
            else None
        )
        return StageClock(sync=sync)

    def score_file(
        self,
        path: str | Path,
        gt_path: str | Path | None = None,
        *,
        units: str = "m",
        intrinsics: Any = None,
    ) -> ScanResult:
        """Read a scan of any supported format and score it; ``read`` is timed with the rest."""
        from st3d_edge.data.readers import read_scan

        clock = self._clock()
        with clock.stage("read"):
            scan = read_scan(path, units=units, intrinsics=intrinsics, gt_path=gt_path)
        return self.score(scan, clock)

    def score(self, scan: Any, clock: StageClock | None = None) -> ScanResult:
        """Score a ``st3d_edge.data.mvtec.Scan`` (anything with ``path, points, pixels`` and, when
        ``pixels`` is not None, ``valid``)."""
        clock = clock or self._clock()
        geometry = self.geometry
        points = np.asarray(scan.points, dtype=np.float32)
        if len(points) < self.k + 1:
            raise file_error(
                scan.path,
                f"only {len(points)} valid points; the model needs at least k + 1 = {self.k + 1}",
            )
        min_n = getattr(self.backend, "min_n", None)
        if min_n is not None and min(self.n, len(points)) < min_n:
            raise file_error(
                scan.path,
                f"only {len(points)} valid points; the {self.backend.name} backend's engine takes at least "
                f"{min_n} (its optimization profile): export with a smaller --profile-min, or "
                "use --backend onnxruntime",
            )
        with clock.stage("sample"):  # the checks inside the stages: the total is the scan's
            if self.s is not None:
                check_coordinates(scan.path, points, scan.pixels, self.s)
            cloud = call(geometry, "to_device", points)
            # on the CPU the samples come in locality order (st3d_edge.geometry.locality): a
            # point's neighbours lie close in memory for the kNN, the network and FPFH
            idx = geometry.sample(cloud, self.n, self.sampler)
            sampled = call(geometry, "take", cloud, idx)
        with clock.stage("knn"):
            nearest = None
            if self.scoring.fused and getattr(geometry, "knn_and_nearest", None) is not None:
                # the geometric score reads each point's 100 nearest: one query serves both
                knn, nearest = geometry.knn_and_nearest(sampled, self.k, self.scoring.neighbour_count)
            else:
                knn = geometry.knn(sampled, self.k)
            spacing = self._check_spacing(scan.path, sampled, knn)
        with clock.stage("inference"):
            if getattr(geometry, "on_device", False):
                # The backend runs on its own stream: the kNN kernels must be done first.
                call(geometry, "synchronize")
            scores = self.backend.run(sampled, knn)
        if self.scoring.fused:
            with clock.stage("geometric"):
                host_points = np.asarray(call(geometry, "to_host", sampled), dtype=np.float32)
                fused = self.scoring(host_points, np.asarray(call(geometry, "to_host", scores)), nearest)
                scores = call(geometry, "to_device", fused)
        with clock.stage("fill"):
            filled = call(geometry, "to_host", fill_scan(geometry, scan, sampled, scores, cloud, idx, knn))
            anomaly_map, valid = pixel_map(scan, filled)
        with clock.stage("image_score"):
            image_score = float(call(geometry, "image_score", sampled, scores, knn, self.image_neighbours))
        check_scores(scan.path, np.append(filled, image_score))
        anomalous = None if self.pixel_threshold is None else int((filled > self.pixel_threshold).sum())
        return ScanResult(
            path=Path(scan.path),
            anomaly_map=anomaly_map,
            valid=valid,
            points=points,
            point_scores=np.asarray(filled, dtype=np.float32),
            image_score=image_score,
            verdict=verdict_for(image_score, self.image_threshold),
            ms=dict(clock.ms),
            valid_points=len(points),
            sampled_points=int(knn.shape[0]),
            anomalous_pixels=anomalous,
            spacing=spacing,
        )


def pixel_map(scan: Any, filled: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(H x W map with invalid pixels 0, valid mask) of an organized scan; (None, None) otherwise."""
    if getattr(scan, "pixels", None) is None:
        return None, None
    pixels = np.asarray(scan.pixels)
    height, width = scan.valid.shape
    # one flat index per pixel, used twice (half the time of two (row, column) scatters)
    flat = pixels[:, 0].astype(np.intp) * width + pixels[:, 1]
    anomaly_map = np.zeros(height * width, dtype=np.float32)
    anomaly_map[flat] = filled
    valid = np.zeros(height * width, dtype=bool)
    valid[flat] = True
    return anomaly_map.reshape(height, width), valid.reshape(height, width)


def engine_for_this_device(bundle: Any, choice: str) -> tuple[Path | None, str]:
    """The bundle's engine path when ``choice`` may use it and it was built for this GPU.

    Returns (path or None, why not). With ``--backend tensorrt`` a mismatch is an error (the
    bundle loader's one-line message); with ``auto`` it only means "use onnxruntime".
    """
    from st3d_edge.runtime.bundle import check_engine_device, current_device

    if choice == "onnxruntime" or getattr(bundle, "engine", None) is None:
        return None, "the bundle has no TensorRT engine"
    try:
        check_engine_device(bundle, current_device())
    except St3dError as exc:
        if choice == "tensorrt":
            raise
        return None, str(exc)
    return bundle.engine_path, ""


def describe_pick(scorer: ScanScorer, picked: Selection) -> str:
    """Which backends were picked and why (one line for stderr)."""
    geometry = getattr(scorer.geometry, "name", type(scorer.geometry).__name__)
    return (
        f"backend: {picked.backend.name} on {picked.backend.device} ({picked.reason}); geometry: {geometry}"
    )


def build_scorer(
    bundle_path: str | Path,
    backend: str = "auto",
    geometry: str = "auto",
    threads: int = 0,
    trust: list[Path] | None = None,
) -> tuple[ScanScorer, Selection]:
    """Load and verify a bundle, pick the backends, and return the scorer and what was picked.

    ``trust``: public keys the bundle must be signed by (besides the trust folder's).
    """
    from st3d_edge.runtime.bundle import load_bundle
    from st3d_edge.runtime.geometry_backend import select_geometry

    bundle = load_bundle(bundle_path, trust=trust)
    engine_path, why_not = engine_for_this_device(bundle, backend)
    picked = select_backend(
        backend,
        bundle.onnx_path("fp32") if "fp32" in bundle.models else bundle.onnx_path(),
        engine_path=engine_path,
        threads=threads,
        gpu_onnx_path=bundle.onnx_path(),
    )
    check_graph_k(bundle, picked.backend)
    if engine_path is None and backend == "auto" and getattr(bundle, "engine", None) is not None:
        picked.reason += f"; the engine was not used: {why_not}"
    return ScanScorer(bundle, picked.backend, select_geometry(geometry)), picked


def check_graph_k(bundle: Any, backend: Any) -> None:
    """Refuse a manifest whose k is not the k the graph (or engine) was built for."""
    graph_k = getattr(backend, "k", None)
    if isinstance(graph_k, int) and graph_k != bundle.k:
        raise file_error(
            Path(bundle.path) / "manifest.json",
            f"field k: {bundle.k}, but the model's knn input takes k = {graph_k}; "
            "export again with `st3d-edge export`",
        )
