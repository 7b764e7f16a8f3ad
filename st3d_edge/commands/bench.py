"""`st3d-edge bench`: per-stage latency of the edge pipeline on one scan, and a PyTorch baseline.

What it reports (stdout; and ``bench.json`` / ``bench.csv`` in ``--out`` with the device facts
of ``st3d_edge.runtime.device_facts`` and n, k, d, precision and backend): per stage (read,
sample, knn, inference, fill, image_score) and for the whole scan the median and p90
milliseconds over ``--repeats`` runs after ``--warmup``
runs, scans per second (1000 / median total), peak host RSS (and device memory when the
backend or the geometry runs on a GPU), the backend and device. When torch is importable and
the bundle's training run folder is found (``--run``, by default the folder above the bundle,
else ``<workdir>/<category>``), the same scan goes through the PyTorch scorer (eager, the same
CPU geometry, the same number of runs) in the same process, and the table gets its column and
the ratio PyTorch / edge per stage.

Without ``--scan`` it synthesizes one defective scan of the bundle's category at
``--size`` (default 800 x 800, about the size of an MVTec 3D-AD scan) into a temporary folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from st3d_edge.commands._common import (
    BackendChoice,
    BackendOption,
    BundleCategoryOption,
    BundleOption,
    BundleWorkdirOption,
    DeviceChoice,
    GeometryOption,
    user_errors,
)
from st3d_edge.commands.infer import DEFAULT_WORKDIR
from st3d_edge.runtime.pipeline import describe_pick

DEFAULT_SIZE = 800


class TorchScorerBackend:
    """The train side's PyTorch scorer behind the inference-backend interface (the baseline)."""

    name = "pytorch-eager"
    device = "CPU"
    on_device = False

    def __init__(self, scorer: Any) -> None:
        import torch

        self.torch = torch
        self.scorer = scorer.eval()

    def run(self, points: Any, knn: Any) -> Any:
        torch = self.torch
        with torch.inference_mode():
            scores = self.scorer(torch.from_numpy(points), torch.from_numpy(knn.astype("int64")))
        return scores.numpy()


def load_torch_baseline(run_dir: Path) -> TorchScorerBackend | None:
    """The PyTorch scorer of a training run folder, or None without torch or a trained student."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    if not (run_dir / "student.pt").is_file():
        return None
    from st3d_edge.model.scorer import Scorer
    from st3d_edge.train.category_model import load_category

    teacher, student, s, mu, sigma, _ = load_category(run_dir)
    return TorchScorerBackend(Scorer(teacher, student, s, mu, sigma))


def synthesize_scan(folder: Path, category: str, size: int, seed: int = 0) -> Path:
    """One defective synthetic scan of ``category`` (or the first synthetic category) at size x size."""
    from st3d_edge.data import synthetic

    if category not in synthetic.CATEGORIES:
        category = synthetic.CATEGORIES[0]
    root = synthetic.write_dataset(
        folder,
        categories=[category],
        train=0,
        validation=0,
        test_good=0,
        test_defect=1,
        size=(size, size),
        seed=seed,
        progress=False,
        defects=[synthetic.DEFECTS[0]],
    )
    scans = sorted(Path(root).glob(f"{category}/test/*/xyz/*.tiff"))
    return scans[0]


def time_scorer(scorer: Any, scan_path: Path, repeats: int, warmup: int) -> list[dict[str, float]]:
    for _ in range(warmup):
        scorer.score_file(scan_path)
    return [scorer.score_file(scan_path).ms for _ in range(repeats)]


def format_table(edge: dict, edge_name: str, baseline: dict | None, baseline_name: str | None) -> str:
    """A plain-text table: stage, edge median/p90, baseline median/p90, ratio baseline/edge."""
    header = f"{'stage':<12} {edge_name + ' median':>26} {'p90':>10}"
    if baseline is not None:
        header += f" {baseline_name + ' median':>24} {'p90':>10} {'ratio':>7}"
    lines = [header + "   (ms)"]
    for stage, stats in edge.items():
        line = f"{stage:<12} {stats['median']:>26.2f} {stats['p90']:>10.2f}"
        if baseline is not None and stage in baseline:
            other = baseline[stage]
            ratio = other["median"] / stats["median"] if stats["median"] > 0 else float("nan")
            line += f" {other['median']:>24.2f} {other['p90']:>10.2f} {ratio:>7.2f}"
        lines.append(line)
    return "\n".join(lines)


def run_bench(
    model: Path,
    scan: Path | None = None,
    repeats: int = 10,
    warmup: int = 2,
    backend: str = "auto",
    geometry: str = "auto",
    threads: int = 0,
    run_dir: Path | None = None,
    workdir: Path = DEFAULT_WORKDIR,
    size: int = DEFAULT_SIZE,
    baseline: bool = True,
    out_dir: Path | None = None,
) -> dict:
    """The command's body; returns the measured tables (also used by benchmarks/runtime.py)."""
    import tempfile

    from st3d_edge.console import err, out
    from st3d_edge.errors import St3dError
    from st3d_edge.runtime.allocator import keep_freed_memory
    from st3d_edge.runtime.device_facts import device_facts
    from st3d_edge.runtime.memory import device_used_mb, peak_host_rss_mb
    from st3d_edge.runtime.pipeline import ScanScorer, build_scorer
    from st3d_edge.runtime.timing import summarize_runs

    if repeats < 1 or warmup < 0:
        raise St3dError("--repeats must be at least 1 and --warmup at least 0")
    keep_freed_memory()  # as a Detector does: the scans reuse the last scan's memory
    scorer, picked = build_scorer(model, backend, geometry, threads)
    err.print(describe_pick(scorer, picked), highlight=False, markup=False)
    with tempfile.TemporaryDirectory(prefix="st3d-bench-") as tmp:
        if scan is None:
            scan = synthesize_scan(Path(tmp), scorer.bundle.category, size)
            err.print(f"synthetic scan: {size} x {size}, category {scorer.bundle.category}", highlight=False)
        first = scorer.score_file(scan)
        edge = summarize_runs(time_scorer(scorer, scan, repeats, warmup))
        bundle = scorer.bundle
        report = {
            "facts": device_facts(),
            "n": bundle.n,
            "k": bundle.k,
            "d": bundle.d,
            "precision": backend_precision(bundle, picked.backend),
            "scan": str(scan),
            "valid_points": first.valid_points,
            "sampled_points": first.sampled_points,
            "backend": picked.backend.name,
            "device": picked.backend.device,
            "geometry": getattr(scorer.geometry, "name", "?"),
            "edge": edge,
            "peak_host_rss_mb": peak_host_rss_mb(),
        }
        if picked.backend.on_device or getattr(scorer.geometry, "on_device", False):
            report["device_used_mb"] = device_used_mb()
        torch_table = None
        if baseline:
            folder = run_dir or _default_run_dir(model, scorer.bundle.category, workdir)
            torch_backend = load_torch_baseline(folder)
            if torch_backend is None:
                err.print(
                    f"no PyTorch baseline (needs torch and a trained run folder; looked in {folder})",
                    highlight=False,
                    markup=False,
                )
            else:
                if threads:
                    torch_backend.torch.set_num_threads(threads)
                eager = ScanScorer(scorer.bundle, torch_backend, select_cpu_geometry())
                torch_table = summarize_runs(time_scorer(eager, scan, repeats, warmup))
                report["pytorch"] = torch_table
    out.print(
        f"scan {report['scan']}: {report['valid_points']} valid points, {report['sampled_points']} sampled; "
        f"{repeats} runs after {warmup} warm-up",
        highlight=False,
    )
    out.print(format_table(edge, report["backend"], torch_table, "pytorch-eager"), highlight=False)
    total = edge["total"]["median"]
    out.print(f"scans/s: {1000.0 / total:.2f} ({report['backend']} on {report['device']})", highlight=False)
    out.print(f"peak host RSS: {report['peak_host_rss_mb']:.0f} MiB", highlight=False)
    if report.get("device_used_mb") is not None:
        out.print(f"device memory in use: {report['device_used_mb']:.0f} MiB", highlight=False)
    if out_dir is not None:
        from st3d_edge.console import wrote

        for path in write_bench_files(report, out_dir):
            wrote(path)
    return report


def backend_precision(bundle: Any, backend: Any) -> str:
    """The precision the backend computes in: the engine's, or that of the ONNX graph it loaded."""
    from st3d_edge.runtime.bundle import ONNX_NAMES

    if backend.name == "tensorrt" and bundle.engine is not None:
        return bundle.engine.precision
    graph = Path(getattr(backend, "model_path", ""))
    return next((p for p, name in ONNX_NAMES.items() if graph.name == name), bundle.precision)


def write_bench_files(report: dict, out_dir: Path) -> list[Path]:
    """``bench.json`` (the whole report) and ``bench.csv`` (one row per runtime and stage, with
    the device facts on every row, so files from several devices concatenate into one table)."""
    import csv
    import io

    from st3d_edge.io_utils import write_json_atomic, write_text_atomic

    out_dir = Path(out_dir)
    fixed = {
        **report["facts"],
        **{key: report[key] for key in ("n", "k", "d", "precision", "sampled_points")},
    }
    rows = []
    for runtime, table in (("edge", report["edge"]), ("pytorch", report.get("pytorch") or {})):
        name = report["backend"] if runtime == "edge" else "pytorch-eager"
        for stage, stats in table.items():
            rows.append({**fixed, "backend": name, "stage": stage, "median_ms": stats["median"],
                         "p90_ms": stats["p90"]})  # fmt: skip
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return [
        write_json_atomic(out_dir / "bench.json", report),
        write_text_atomic(out_dir / "bench.csv", text.getvalue()),
    ]


def select_cpu_geometry() -> Any:
    from st3d_edge.runtime.geometry_backend import CpuGeometry

    return CpuGeometry()


def _default_run_dir(model: Path, category: str, workdir: Path) -> Path:
    above = Path(model).resolve().parent
    return above if (above / "student.pt").is_file() else workdir / category


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        model: BundleOption = None,
        category: BundleCategoryOption = None,
        workdir: BundleWorkdirOption = DEFAULT_WORKDIR,
        scan: Annotated[
            Path | None, typer.Option("--scan", help="Scan TIFF (default: synthesize one).")
        ] = None,
        repeats: Annotated[int, typer.Option("--repeats", help="Timed runs.")] = 10,
        warmup: Annotated[int, typer.Option("--warmup", help="Untimed runs first.")] = 2,
        backend: BackendOption = BackendChoice.auto,
        geometry: GeometryOption = DeviceChoice.auto,
        threads: Annotated[int, typer.Option("--threads", help="CPU threads for onnxruntime and torch.")] = 0,
        run: Annotated[
            Path | None, typer.Option("--run", help="Training run folder for the PyTorch baseline.")
        ] = None,
        size: Annotated[int, typer.Option("--size", help="Side of the synthetic scan.")] = DEFAULT_SIZE,
        baseline: Annotated[
            bool, typer.Option("--baseline/--no-baseline", help="Also time the PyTorch scorer.")
        ] = True,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out", help="Folder for bench.json and bench.csv (default: bench/ beside the bundle)."
            ),
        ] = None,
    ) -> None:
        """Per-stage latency (median, p90), scans/s and peak memory of the edge pipeline."""
        from st3d_edge.commands.infer import resolve_bundle

        with user_errors():
            bundle = resolve_bundle(model, category, workdir)
            run_bench(
                bundle,
                scan,
                repeats,
                warmup,
                backend.value,
                geometry.value,
                threads,
                run,
                workdir,
                size,
                baseline,
                out if out is not None else Path(bundle).resolve().parent / "bench",
            )
