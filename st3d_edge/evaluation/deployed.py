"""Evaluate what is deployed: a bundle's ONNX graphs or its engine, through the runtime pipeline.

Each variant (the FP32 graph, the FP16 graph, the TensorRT engine, and for comparison the
PyTorch run the bundle came from) scores the test split with ``st3d_edge.runtime.pipeline.
ScanScorer``, the code ``infer`` runs: the bundle's sampler, kNN, the variant's network, the
inverse-distance fill to every valid pixel and the runtime's image score. Only the network
differs between the rows, so a metric that moves between them is what that precision or
backend costs. Maps are IDW-filled here, not harmonically interpolated as in the PyTorch
``evaluate``; that choice is the runtime's, and the PyTorch row here uses it too.

No torch unless the PyTorch row is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from st3d_edge.errors import St3dError, file_error
from st3d_edge.evaluation.maps import MAP_SIGMA
from st3d_edge.evaluation.pro import HEADLINE_LIMIT, LIMITS
from st3d_edge.evaluation.report import CategoryResult
from st3d_edge.evaluation.runner import ScanOutcome, evaluate_scans
from st3d_edge.runtime.bundle import Bundle

DEPLOYED_BACKENDS = ("onnxruntime", "numba", "tensorrt")


@dataclass
class Variant:
    """One row of the comparison: a label and the network behind ``run(points, knn)``."""

    label: str
    backend: Any


def onnx_variants(bundle: Bundle, precisions: list[str] | None = None, threads: int = 0) -> list[Variant]:
    """The bundle's ONNX graphs (default: every one it has) in onnxruntime, on a GPU when it has one."""
    from st3d_edge.runtime.backends import OnnxRuntimeBackend, onnxruntime_gpu_providers

    providers = onnxruntime_gpu_providers()
    variants = []
    for precision in precisions or sorted(bundle.models, key=["fp32", "fp16"].index):
        backend = OnnxRuntimeBackend(bundle.onnx_path(precision), providers=providers, threads=threads)
        variants.append(Variant(f"onnx {precision} ({backend.name})", backend))
    return variants


def numba_variant(bundle: Bundle, threads: int = 0) -> Variant:
    """The bundle's FP32 graph run by the numba CPU scorer."""
    from st3d_edge.runtime.cpu_scorer import NumbaCpuBackend

    return Variant("onnx fp32 (numba-cpu)", NumbaCpuBackend(bundle.onnx_path("fp32"), threads=threads))


def engine_variant(bundle: Bundle) -> Variant:
    """The bundle's TensorRT engine (refused unless built by this TensorRT for this GPU)."""
    from st3d_edge.runtime.backends import TensorRTBackend
    from st3d_edge.runtime.bundle import check_engine_device, current_device

    if bundle.engine is None:
        raise file_error(
            bundle.path, "has no TensorRT engine; build one with `st3d-edge engine` on this device"
        )
    check_engine_device(bundle, current_device())
    return Variant(f"engine {bundle.engine.precision} (tensorrt)", TensorRTBackend(bundle.engine_path))


class TorchBackend:
    """The trained run folder's PyTorch scorer with the backends' ``run(points, knn)`` (CPU)."""

    name = "pytorch"

    def __init__(self, run_dir: str | Path) -> None:
        from st3d_edge.model.scorer import Scorer
        from st3d_edge.train.category_model import load_category

        teacher, student, s, mu, sigma, _ = load_category(run_dir)
        self.scorer = Scorer(teacher, student, s, mu, sigma).eval()

    def run(self, points: np.ndarray, knn: np.ndarray) -> np.ndarray:
        from st3d_edge.export.parity import torch_scores

        return torch_scores(self.scorer, points, knn)


def torch_variant(run_dir: str | Path) -> Variant:
    return Variant("pytorch fp32 (cpu)", TorchBackend(run_dir))


def scan_outcome(scorer: Any) -> Callable[[Any], ScanOutcome]:
    """Score one test scan with a runtime ``ScanScorer``: its map, image score and timings."""

    def outcome(scan: Any) -> ScanOutcome:
        if scan.defect is not None and scan.gt is None:
            raise file_error(scan.path, "defective test scan without a ground-truth mask (../gt/<id>.png)")
        result = scorer.score(scan)
        ms = dict(result.ms)
        fill_ms = ms.pop("fill", 0.0)
        gt = scan.gt if scan.gt is not None else np.zeros(scan.valid.shape, dtype=bool)
        return ScanOutcome(
            scan.path, scan.defect, result.anomaly_map, gt, result.image_score, sum(ms.values()), fill_ms
        )

    return outcome


def evaluate_variant(
    data_root: str | Path,
    bundle: Bundle,
    variant: Variant,
    *,
    geometry: Any = None,
    progress: bool = True,
    map_sigma: float = MAP_SIGMA,
) -> CategoryResult:
    """Evaluate one variant on ``<data_root>/<bundle.category>/test``, its maps blurred by
    ``map_sigma``. The runtime's maps hold 0 at invalid pixels where the run folder's evaluation
    fills them harmonically, so the blur mixes those zeros in: compare rows of this table with
    each other, not with ``evaluate`` on the run folder."""
    from st3d_edge.data.mvtec import read_scan, scan_paths
    from st3d_edge.runtime.pipeline import ScanScorer

    paths = scan_paths(data_root, bundle.category, "test")
    if not paths:
        raise file_error(Path(data_root) / bundle.category / "test", "no test scans")
    scorer = ScanScorer(bundle, variant.backend, geometry)
    return evaluate_scans(
        (read_scan(p) for p in paths),
        None,
        category=bundle.category,
        method=variant.label,
        total=len(paths),
        progress=progress,
        scan_outcome=scan_outcome(scorer),
        map_sigma=map_sigma,
    )


def comparison_table(results: list[CategoryResult]) -> str:
    """Rows of variants, AU-PRO at every limit, I-AUROC and the headline's change against the first row."""
    if not results:
        raise St3dError("nothing was evaluated")
    reference = results[0].headline
    header = ["variant"] + [f"AU-PRO@{lim:g}" for lim in LIMITS] + ["I-AUROC", f"d@{HEADLINE_LIMIT:g}", "ms"]
    rows = [
        [r.method]
        + [f"{r.au_pro[lim]:.4f}" for lim in LIMITS]
        + [f"{r.i_auroc:.4f}", f"{r.headline - reference:+.4f}", f"{r.infer_ms + r.fill_ms:.1f}"]
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([cells[0].ljust(widths[0]), *rest])

    lines = [line(cells) for cells in [header, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


def precision_change(bundle: Bundle, data_root: str | Path, split: str = "validation") -> dict[str, Any]:
    """What the FP16 graph changes against the FP32 graph on a split's good scans (the validation ones).

    Through the runtime pipeline, both graphs on the same samples: the largest relative change of
    an image score, the verdicts that flip, and the pixels above the pixel threshold (the false
    alarms on good parts, which is what a threshold calibrated on FP32 scores can lose).
    """
    from st3d_edge.data.mvtec import good_scan_paths, read_scan
    from st3d_edge.runtime.pipeline import ScanScorer

    paths = good_scan_paths(data_root, bundle.category, split)
    if not paths:
        raise file_error(Path(data_root) / bundle.category / split, "no good scans to compare the graphs on")
    fp32, fp16 = (ScanScorer(bundle, v.backend) for v in onnx_variants(bundle, ["fp32", "fp16"], threads=2))
    image_change, flips, pixels = 0.0, 0, {"fp32": 0, "fp16": 0}
    for path in paths:
        scan = read_scan(path)
        a, b = fp32.score(scan), fp16.score(scan)
        image_change = max(image_change, abs(b.image_score - a.image_score) / max(abs(a.image_score), 1e-12))
        flips += a.verdict != b.verdict
        pixels["fp32"] += a.anomalous_pixels or 0
        pixels["fp16"] += b.anomalous_pixels or 0
    return {
        "split": split,
        "scans": len(paths),
        "max_image_score_change": image_change,
        "verdict_changes": flips,
        "pixels_over_threshold": pixels,
    }
