"""Write an export bundle from a trained category's run folder (what `st3d-edge export` does).

Formats (``--format``):

``onnx``    model.onnx (FP32), plus model_fp16.onnx with ``--precision fp16``, and the check clouds
            (``st3d_edge.runtime.check_clouds``: inputs and onnxruntime's scores of every graph)
``engine``  the above and model.engine + timing.cache built from the graph of the precision,
            kept only if it passes the check clouds (``st3d_edge.runtime.engine_build``)
``all``     the above (engine included) and a Triton repository serving the engine
``triton``  the ONNX graphs and a Triton repository serving the ONNX graph (no TensorRT needed)

The whole folder is written under a temporary name and renamed at the end
(``io_utils.atomic_dir``): an interrupted or failed export leaves the previous bundle, or
none, never half of one. Before anything is written, the FP32 graph is run by onnxruntime
against the PyTorch scorer on a few synthetic clouds; a relative error above
``PARITY_LIMIT`` stops the export (the graph would not compute what was trained).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from st3d_edge.errors import St3dError, file_error
from st3d_edge.io_utils import atomic_dir
from st3d_edge.runtime.bundle import GEOMETRIC_BANK_NAME, ONNX_NAMES, Bundle, write_manifest
from st3d_edge.runtime.check_clouds import CheckClouds, write_check_clouds

FORMATS = ("onnx", "engine", "all", "triton")
PARITY_LIMIT = 1e-4
PARITY_CLOUDS = 3
PARITY_MAX_POINTS = 4096  # parity clouds are min(n, this): torch runs them too, on the CPU


@dataclass
class ExportReport:
    bundle: Bundle
    parity: dict
    triton_dir: Path | None = None
    sizes: dict[str, int] = field(default_factory=dict)
    fp16_validation: dict | None = None  # evaluation.deployed.precision_change on the validation scans
    fp16_validation_skipped: str = ""  # why there is none, for an FP16 export


def _numba_parity(run_dir: Path, graph, clouds, want: list) -> float | None:
    """The numba CPU scorer (the CPU default) on the graph's own weights against onnxruntime;
    None when numba is not installed (it is in the train extra)."""
    from st3d_edge.export.parity import relative_error
    from st3d_edge.numba_support import numba_available

    if not numba_available():
        return None
    from st3d_edge.runtime.cpu_scorer import graph_weights, score

    weights = graph_weights(graph)
    error = max(relative_error(score(weights, q, r), w) for (q, r), w in zip(clouds, want, strict=True))
    if error > PARITY_LIMIT:
        raise file_error(
            run_dir,
            f"the numba CPU scorer disagrees with onnxruntime on the exported graph (max relative "
            f"error {error:.2e} > {PARITY_LIMIT:.0e}); please report this",
        )
    return float(error)


def parity_clouds(n: int, k: int, s: float, count: int = PARITY_CLOUDS, seed: int = 0):
    """Synthetic surface patches with a point spacing near s, and their kNN graphs (self first)."""
    from st3d_edge.geometry.knn import knn_indices

    rng = np.random.default_rng(seed)
    clouds = []
    for i in range(count):
        m = max(k + 1, min(n, PARITY_MAX_POINTS) - 97 * i)  # differing sizes exercise dynamic n
        extent = s * np.sqrt(m)
        uv = rng.uniform(-extent / 2, extent / 2, (m, 2))
        height = 0.1 * extent * np.sin(uv[:, 0] * 6 / extent) * np.cos(uv[:, 1] * 4 / extent)
        bump = 0.05 * extent * np.exp(-(uv**2).sum(1) / (0.01 * extent**2))  # a small defect
        points = np.column_stack([uv, height + bump + rng.normal(0, 0.05 * s, m)]).astype(np.float32)
        clouds.append((points, knn_indices(points, k, workers=1)))
    return clouds


def image_score_settings(scoring: str, thresholds: dict) -> dict:
    """How the runtime turns point scores into an image score (recorded in the manifest): the
    neighbour count the image threshold was calibrated with, else the one of ``scoring``."""
    from st3d_edge.calibration.scoring import IMAGE_NEIGHBOURS

    method = "max over points of the mean score of the point's first kNN entries"
    return {
        "method": method,
        "neighbours": int(thresholds.get("image_neighbours", IMAGE_NEIGHBOURS[scoring])),
    }


def read_thresholds(run_dir: Path) -> dict:
    """The category's thresholds.json as a dict; empty (with a warning) if there is none."""
    from rich.markup import escape

    from st3d_edge.calibration.thresholds import load_thresholds
    from st3d_edge.console import err

    path = run_dir / "thresholds.json"
    if not path.is_file():
        err.print(
            f"[yellow]warning:[/yellow] {escape(str(path))}: missing; the bundle gives no verdicts",
            markup=True,
            highlight=False,
        )
        return {}
    return load_thresholds(path).as_dict()


def write_scoring(folder: Path, scoring) -> dict:
    """Put the scoring's bank in the bundle folder; returns the manifest's ``scoring`` entry."""
    if not scoring.fused:
        return {"method": "student"}
    np.save(folder / GEOMETRIC_BANK_NAME, scoring.geometric.bank.bank, allow_pickle=False)
    return {
        "method": "fused",
        "fusion": scoring.fusion.to_dict(),
        "geometric": dataclasses.asdict(scoring.geometric.settings),
        "bank": GEOMETRIC_BANK_NAME,
    }


def versions(engine_version: str | None) -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    from st3d_edge import __version__
    from st3d_edge.export.onnx_graph import OPSET

    found = {
        "st3d_edge": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opset": str(OPSET),
    }
    if engine_version:
        found["tensorrt"] = engine_version
    return found


def write_bundle(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    fmt: str = "onnx",
    precision: str = "fp32",
    engine_options=None,
    feature_outputs: bool = False,
    signing_key: Path | None = None,
) -> ExportReport:
    """Export the trained category in ``run_dir`` to the bundle folder ``out_dir``."""
    from st3d_edge.export.onnx_graph import scorer_graph
    from st3d_edge.export.parity import check_parity, onnx_session, relative_error, run_session
    from st3d_edge.model.scorer import Scorer
    from st3d_edge.train.category_model import load_category

    if fmt not in FORMATS:
        raise St3dError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if precision not in ONNX_NAMES:
        raise St3dError(f"unknown precision {precision!r}; choose fp32 or fp16")
    build_engine_too = fmt in ("engine", "all")
    if build_engine_too:
        from st3d_edge.runtime.tensorrt_build import EngineOptions, import_tensorrt, resolve_profile

        import_tensorrt()  # fail before the slow part when the extra is missing
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if signing_key is not None:
        from st3d_edge.runtime.signing import load_private_key

        load_private_key(signing_key)  # a bad key is refused before the slow part
    teacher, student, s, mu, sigma, preset = load_category(run_dir)
    n, k, d = preset.model.n, preset.model.k, preset.model.d
    if build_engine_too:
        engine_options = engine_options or EngineOptions()
        resolve_profile(n, k, engine_options)  # refuse a bad profile before any work
    thresholds = read_thresholds(run_dir)
    from st3d_edge.calibration.scoring import load_scoring

    scoring = load_scoring(run_dir, preset.model.scoring)

    graphs = {"fp32": scorer_graph(teacher, student, s, mu, sigma, k, feature_outputs=feature_outputs)}
    if precision == "fp16":
        graphs["fp16"] = scorer_graph(
            teacher, student, s, mu, sigma, k, precision="fp16", feature_outputs=feature_outputs
        )
    clouds = parity_clouds(n, k, s)
    sessions = {p: onnx_session(g.SerializeToString()) for p, g in graphs.items()}
    result = check_parity(sessions["fp32"], Scorer(teacher, student, s, mu, sigma).eval(), clouds)
    parity = {"reference": "torch", **result.as_dict(), "limit": PARITY_LIMIT}
    if result.max_relative_error > PARITY_LIMIT:
        raise file_error(
            run_dir,
            f"exported graph disagrees with PyTorch (max relative error {result.max_relative_error:.2e} "
            f"> {PARITY_LIMIT:.0e}); please report this",
        )
    # onnxruntime's scores of every graph: the device checks an engine against them later
    checks = CheckClouds(
        clouds, {p: [run_session(session, q, r) for q, r in clouds] for p, session in sessions.items()}
    )
    parity["check_clouds"] = len(clouds)
    parity["numba_cpu_max_relative_error"] = _numba_parity(
        run_dir, graphs["fp32"], clouds, checks.scores["fp32"]
    )
    if "fp16" in sessions:
        drift = max(
            relative_error(a, b) for a, b in zip(checks.scores["fp16"], checks.scores["fp32"], strict=True)
        )
        parity["fp16_max_relative_drift"] = drift

    previous_cache = out_dir / "timing.cache"
    with atomic_dir(out_dir, durable=True) as tmp:
        models = {}
        for p, graph in graphs.items():
            (tmp / ONNX_NAMES[p]).write_bytes(graph.SerializeToString())
            models[p] = ONNX_NAMES[p]
        write_check_clouds(tmp, checks)
        engine = None
        if build_engine_too:
            from st3d_edge.runtime.engine_build import build_checked_engine

            engine, engine_check = build_checked_engine(
                tmp / models[precision],
                tmp,
                n=n,
                k=k,
                precision=precision,
                checks=checks,
                options=engine_options,
                previous_cache=previous_cache if previous_cache.is_file() else None,
                where=out_dir,
            )
            parity["engine_check"] = engine_check.as_dict()
        triton_dir = None
        if fmt in ("all", "triton"):
            from st3d_edge.export.triton import write_triton_repository

            triton_dir = write_triton_repository(
                tmp,
                category=run_dir.name,
                k=k,
                d=d,
                onnx_file=models[precision],
                engine_file=engine.file if engine else None,
                feature_outputs=feature_outputs,
            )
        bundle = write_manifest(
            tmp,
            scoring=write_scoring(tmp, scoring),
            category=run_dir.name,
            n=n,
            k=k,
            d=d,
            s=s,
            sampler=preset.model.sampler,
            precision=precision,
            models=models,
            thresholds=thresholds,
            image_score=image_score_settings(scoring.method, thresholds),
            versions=versions(engine.device.tensorrt_version if engine else None),
            engine=engine,
            parity=parity,
            signing_key=signing_key,
        )
    final = dataclasses.replace(bundle, path=out_dir)
    sizes = {name: entry.size for name, entry in final.files.items()}
    moved_triton = out_dir / triton_dir.relative_to(tmp) if triton_dir else None
    report = ExportReport(final, parity, moved_triton, sizes)
    if precision == "fp16":
        report.fp16_validation, report.fp16_validation_skipped = fp16_validation(final, run_dir)
    return report


def fp16_validation(bundle: Bundle, run_dir: Path) -> tuple[dict | None, str]:
    """The FP16 graph's change on the validation scans the run was trained with, or why not."""
    import json

    from st3d_edge.evaluation.deployed import precision_change

    data = json.loads((run_dir / "config.json").read_text()).get("job", {}).get("data")
    if not data or not (Path(data) / bundle.category / "validation").is_dir():
        return None, f"the run's validation scans are not at {data or '(no data folder recorded)'}"
    return precision_change(bundle, data), ""
