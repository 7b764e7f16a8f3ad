"""Evaluate a point scorer on the test split of a category: maps, metrics, timings.

The protocol, with the choices the paper leaves open:

* Each test scan's valid points are reduced to the model's n points by the sampler recorded
  in the model's config, the kNN graph is built on the sampled points, and the scorer gives
  one score per sampled point (the run's scoring: paper eq. 6 for 3D-ST alone, fused with the
  geometric score by default; any :data:`PointScorer` works, the "Back to the Feature"
  baseline uses the same path).
* The map of a scan is H x W: sampled points on their pixels, harmonic interpolation for
  every other pixel, then a Gaussian blur as BTF's and PatchCore's evaluation code does
  (:mod:`st3d_edge.evaluation.maps`; ``map_sigma``, 0 for the raw maps).
* Pixel level: PRO curve and AU-PRO at :data:`~st3d_edge.evaluation.pro.LIMITS` over all test
  maps of the category (:mod:`st3d_edge.evaluation.pro`).
* Unorganized scans (PLY, PCD, N x 3) have a 1 x m point map instead
  (:func:`st3d_edge.evaluation.maps.point_map`), the same metrics, and no map file.
* Image level: AUROC of ``st3d_edge.geometry.smoothing.image_score`` on the per-point scores
  (maximum over sampled points of the mean score of each point's nearest neighbours, as many
  as the scoring's ``image_neighbours``: the reduction the thresholds and the runtime use); a
  scan is defective when it lies in a defect folder.
* Timing per scan covers sampling, kNN and scoring (on CUDA after a device synchronisation);
  reading files and interpolating the map are excluded (the latter is reported separately).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from st3d_edge.errors import MissingExtraError, file_error
from st3d_edge.evaluation.auroc import image_auroc
from st3d_edge.evaluation.maps import MAP_SIGMA, blur_map, map_path, point_map, scores_to_map, write_map
from st3d_edge.evaluation.pro import HEADLINE_LIMIT, LIMITS, au_pro_at_limits, pro_curve
from st3d_edge.evaluation.report import CURVE_LIMITS, CategoryResult
from st3d_edge.geometry.smoothing import IMAGE_SCORE_NEIGHBOURS

if TYPE_CHECKING:
    from st3d_edge.calibration.scoring import Scoring

# valid points (m, 3) float32 -> (sampled indices int64[n], kNN of the sampled points int[n, k], scores[n])
PointScorer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class ScanOutcome:
    path: Path
    defect: str | None
    anomaly_map: np.ndarray  # float32 (H, W)
    gt: np.ndarray  # bool (H, W); all False for good scans
    image_score: float
    infer_ms: float
    fill_ms: float


def score_scan(
    scan, point_scorer: PointScorer, image_neighbours: int = IMAGE_SCORE_NEIGHBOURS
) -> ScanOutcome:
    """Score one scan and build its full-resolution map."""
    from st3d_edge.geometry.smoothing import image_score

    if scan.defect is not None and scan.gt is None:
        raise file_error(
            scan.path, "defective test scan without a ground-truth mask (../gt/<id>.png, --masks)"
        )
    start = time.perf_counter()
    idx, knn, scores = point_scorer(scan.points)
    infer_ms = 1000.0 * (time.perf_counter() - start)
    scores = np.asarray(scores, dtype=np.float64)
    start = time.perf_counter()
    if scan.pixels is None:
        anomaly_map, gt = point_map(scan.points, idx, scores, scan.gt)
    else:
        anomaly_map = scores_to_map(scan.valid.shape, scan.pixels[idx], scores)
        gt = scan.gt if scan.gt is not None else np.zeros(scan.valid.shape, dtype=bool)
    fill_ms = 1000.0 * (time.perf_counter() - start)
    score = image_score(scan.points[idx], scores, knn, neighbours=min(image_neighbours, knn.shape[1]))
    return ScanOutcome(scan.path, scan.defect, anomaly_map, gt, score, infer_ms, fill_ms)


def metrics_by_defect(outcomes: list[ScanOutcome]) -> dict[str, dict[str, float]]:
    """AU-PRO@HEADLINE_LIMIT and image AUROC of each defect type against the good scans alone
    (which type a method misses); empty unless the scans hold two or more defect types."""
    kinds = sorted({o.defect for o in outcomes if o.defect is not None})
    if len(kinds) < 2:
        return {}
    good = [o for o in outcomes if o.defect is None]
    table = {}
    for kind in kinds:
        au_pro, _, auroc = metrics(good + [o for o in outcomes if o.defect == kind])
        table[kind] = {"au_pro": au_pro[HEADLINE_LIMIT], "i_auroc": auroc}
    return table


def metrics(outcomes: list[ScanOutcome]) -> tuple[dict[float, float], list[float], float]:
    """(AU-PRO at LIMITS, AU-PRO at CURVE_LIMITS, image AUROC); NaN where undefined."""
    labels = [o.defect is not None for o in outcomes]
    if any(o.gt.any() for o in outcomes) and not all(o.gt.all() for o in outcomes):
        fpr, pro = pro_curve([o.anomaly_map for o in outcomes], [o.gt for o in outcomes])
        au_pro = au_pro_at_limits(fpr, pro, LIMITS)
        curve = list(au_pro_at_limits(fpr, pro, CURVE_LIMITS).values())
    else:
        au_pro = {lim: float("nan") for lim in LIMITS}
        curve = [float("nan")] * len(CURVE_LIMITS)
    both_kinds = 0 < sum(labels) < len(labels)
    auroc = image_auroc([o.image_score for o in outcomes], labels) if both_kinds else float("nan")
    return au_pro, curve, auroc


def evaluate_scans(
    scans: Iterable,
    point_scorer: PointScorer | None,
    *,
    category: str,
    method: str = "3D-ST",
    maps_dir: str | Path | None = None,
    total: int | None = None,
    progress: bool = True,
    peak_gpu_mb: Callable[[], float | None] | None = None,
    on_map: Callable[[Path], None] | None = None,
    scan_outcome: Callable[[Any], ScanOutcome] | None = None,
    image_neighbours: int = IMAGE_SCORE_NEIGHBOURS,
    map_sigma: float = MAP_SIGMA,
) -> CategoryResult:
    """Score every scan, write its map (when ``maps_dir``), and compute the category's metrics.

    ``image_neighbours``: the image score's neighbour count (the scoring's). ``map_sigma``: the
    blur of organized scans' maps before they are written and measured (0: none).

    ``scan_outcome`` replaces the sampled-scores-plus-harmonic-map path of ``point_scorer``
    (the deployed-model evaluation passes the runtime pipeline's own maps).
    """
    from st3d_edge.runtime.memory import peak_host_rss_mb

    outcomes = []
    with _bar(progress, f"{method} {category}", total) as advance:
        for scan in scans:
            outcome = scan_outcome(scan) if scan_outcome else score_scan(scan, point_scorer, image_neighbours)
            if scan.pixels is not None:
                outcome.anomaly_map = blur_map(outcome.anomaly_map, map_sigma)
                if maps_dir is not None:
                    where = map_path(maps_dir, category, scan.defect, scan.name)
                    path = write_map(where, outcome.anomaly_map)
                    if on_map:
                        on_map(path)
            outcomes.append(outcome)
            advance(scan.name)
    if not outcomes:
        raise ValueError(f"no test scans for {category}")
    au_pro, curve, auroc = metrics(outcomes)
    by_defect = metrics_by_defect(outcomes)
    return CategoryResult(
        category=category,
        method=method,
        scans=len(outcomes),
        defective=sum(o.defect is not None for o in outcomes),
        au_pro=au_pro,
        i_auroc=auroc,
        infer_ms=float(np.mean([o.infer_ms for o in outcomes])),
        fill_ms=float(np.mean([o.fill_ms for o in outcomes])),
        peak_rss_mb=peak_host_rss_mb(),
        peak_gpu_mb=peak_gpu_mb() if peak_gpu_mb else None,
        limit_curve=curve,
        map_sigma=map_sigma,
        by_defect=by_defect,
    )


def run_image_neighbours(run_dir: str | Path, trained_scoring: bool, scoring: Scoring) -> int:
    """The image score's neighbour count a run's model is evaluated with: the count its image
    threshold was calibrated with (the one its bundle ships), else the scoring's current one.

    Runs trained before the count changed keep theirs, so ``evaluate`` measures what their
    exported bundle does.
    """
    from st3d_edge.calibration.thresholds import load_thresholds
    from st3d_edge.train.student import THRESHOLDS

    path = Path(run_dir) / THRESHOLDS
    if trained_scoring and path.exists():
        return load_thresholds(path).image_neighbours
    return scoring.image_neighbours


class ModelPointScorer:
    """The trained 3D-ST model of a run folder as a :data:`PointScorer` (torch, CPU or CUDA)."""

    def __init__(
        self, run_dir: str | Path, device: str = "cpu", sampler: str | None = None, scoring: str | None = None
    ) -> None:
        try:
            import torch
        except ImportError:
            raise MissingExtraError("torch", "train", "needed to run the trained model") from None

        from st3d_edge.calibration.scoring import load_scoring
        from st3d_edge.model.scorer import Scorer
        from st3d_edge.train.category_model import load_category

        teacher, student, s, mu, sigma, preset = load_category(run_dir)
        self.preset = preset
        self.scoring = load_scoring(run_dir, scoring or preset.model.scoring)
        trained = self.scoring.method == preset.model.scoring
        self.image_neighbours = run_image_neighbours(run_dir, trained, self.scoring)
        self.n, self.k = preset.model.n, preset.model.k
        self.sampler = sampler or preset.model.sampler
        self.device = device
        self.scorer = Scorer(teacher, student, s, mu, sigma).to(device).eval()
        self._torch = torch
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(device)

    def __call__(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from st3d_edge.geometry.knn import knn_indices
        from st3d_edge.geometry.sampling import sample_indices

        torch = self._torch
        idx = sample_indices(points, self.n, self.sampler)
        sampled = np.ascontiguousarray(points[idx], dtype=np.float32)
        knn = knn_indices(sampled, min(self.k, len(sampled)))
        with torch.no_grad():
            points_t = torch.from_numpy(sampled).to(self.device)
            scores = self.scorer(points_t, torch.from_numpy(knn.astype(np.int64)).to(self.device))
            scores = scores.cpu().numpy()  # a device-to-host copy waits for the GPU to finish
        return idx, knn, self.scoring(sampled, scores)

    def peak_gpu_mb(self) -> float | None:
        if not self.device.startswith("cuda"):
            return None
        return self._torch.cuda.max_memory_allocated(self.device) / 2**20


def evaluate_category(
    data_root: str | Path,
    category: str,
    run_dir: str | Path,
    *,
    device: str = "cpu",
    maps_dir: str | Path | None = None,
    sampler: str | None = None,
    progress: bool = True,
    method: str = "3D-ST",
    on_map: Callable[[Path], None] | None = None,
    scoring: str | None = None,
    map_sigma: float = MAP_SIGMA,
) -> CategoryResult:
    """Load the trained model of ``run_dir`` and evaluate it on ``<data_root>/<category>/test``.

    ``scoring`` picks the anomaly score (``fused`` or ``student``); default: the run's own.
    ``map_sigma``: the maps' blur (:func:`~st3d_edge.evaluation.maps.blur_map`).
    """
    from st3d_edge.data.mvtec import read_scan, scan_paths

    scorer = ModelPointScorer(run_dir, device=device, sampler=sampler, scoring=scoring)
    paths = scan_paths(data_root, category, "test")
    return evaluate_scans(
        (read_scan(p) for p in paths),
        scorer,
        category=category,
        method=method,
        maps_dir=maps_dir,
        total=len(paths),
        progress=progress,
        peak_gpu_mb=scorer.peak_gpu_mb,
        on_map=on_map,
        image_neighbours=scorer.image_neighbours,
        map_sigma=map_sigma,
    )


def evaluate_folders(
    good: list[str],
    defective: list[str],
    category: str,
    run_dir: str | Path,
    *,
    masks: str | Path | None = None,
    units: str = "m",
    intrinsics=None,
    device: str = "cpu",
    maps_dir: str | Path | None = None,
    sampler: str | None = None,
    scoring: str | None = None,
    progress: bool = True,
    map_sigma: float = MAP_SIGMA,
) -> CategoryResult:
    """Evaluate the model of ``run_dir`` on folders (or globs) of good and defective scans.

    Like anomalib's Folder datamodule: a defective scan's mask is ``<masks>/<scan name>.png``
    or ``.npy`` (or a label field of its PLY/PCD); defective scans count as defect type
    ``defective``.
    """
    from st3d_edge.data.readers import read_scan
    from st3d_edge.data.scanlist import expand_scan_paths, mask_path

    good_paths, defect_paths = expand_scan_paths(good), expand_scan_paths(defective)
    masks = None if masks is None else Path(masks)

    def scans():
        for path, is_defect in [(p, False) for p in good_paths] + [(p, True) for p in defect_paths]:
            gt = mask_path(path, masks) if is_defect and masks is not None else None
            scan = read_scan(path, units=units, intrinsics=intrinsics, gt_path=gt)
            scan.category, scan.split = category, "test"
            scan.defect, scan.gt = ("defective", scan.gt) if is_defect else (None, None)
            yield scan

    scorer = ModelPointScorer(run_dir, device=device, sampler=sampler, scoring=scoring)
    return evaluate_scans(
        scans(),
        scorer,
        category=category,
        maps_dir=maps_dir,
        total=len(good_paths) + len(defect_paths),
        progress=progress,
        peak_gpu_mb=scorer.peak_gpu_mb,
        image_neighbours=scorer.image_neighbours,
        map_sigma=map_sigma,
    )


class _bar:
    """A progress bar on stderr (or nothing), advanced with the name of the scan just done."""

    def __init__(self, enabled: bool, description: str, total: int | None) -> None:
        self.enabled, self.description, self.total = enabled, description, total

    def __enter__(self):
        if not self.enabled:
            return lambda status="": None
        from st3d_edge.console import progress_bar

        self._progress = progress_bar()
        self._progress.__enter__()
        task = self._progress.add_task(self.description, total=self.total, status="")
        return lambda status="": self._progress.update(task, advance=1, status=status)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._progress.__exit__(*exc)
