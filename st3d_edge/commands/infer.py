"""`st3d-edge infer`: score scans with an exported bundle, on the edge, without torch.

Per scan it writes ``<name>_map.tiff``, ``<name>_heatmap.png``, with ``--ply`` ``<name>.ply``,
and one line in ``results.jsonl`` (formats: st3d_edge.runtime.outputs). A scan is skipped when
its map and its results line already exist, unless ``--overwrite``. A scan that cannot be read
is reported in one line and skipped; the exit code is then 1.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Annotated

import typer

from st3d_edge.commands._common import (
    BackendChoice,
    BackendOption,
    BundleCategoryOption,
    BundleOption,
    BundleWorkdirOption,
    DeviceChoice,
    GeometryOption,
    print_error,
    user_errors,
)

DEFAULT_WORKDIR = Path("st3d-runs")
DEFAULT_OUT = Path("st3d-infer")
SCAN_SUFFIXES = (".tiff", ".tif")


def expand_scan_paths(patterns: list[str]) -> list[Path]:
    """Files as given, folders searched recursively for TIFFs, globs expanded; sorted, unique."""
    from st3d_edge.errors import St3dError

    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.suffix.lower() in SCAN_SUFFIXES)
        elif path.exists():
            matches = [path]
        elif glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        else:
            raise St3dError(f"{pattern}: no such file or folder")
        if not matches:
            raise St3dError(f"{pattern}: no scans (.tiff) found")
        found.extend(matches)
    unique = {p.resolve(): p for p in found}
    return [unique[key] for key in sorted(unique)]


def resolve_bundle(model: Path | None, category: str | None, workdir: Path) -> Path:
    """--model, or the bundle of --category in the run folder (<workdir>/<category>/bundle)."""
    from st3d_edge.errors import St3dError

    if model is not None:
        return model
    if category is None:
        raise St3dError("give the bundle with --model BUNDLE, or --category NAME to use the run folder's")
    return workdir / category / "bundle"


def describe_pick(scorer, picked) -> str:
    geometry = getattr(scorer.geometry, "name", type(scorer.geometry).__name__)
    return (
        f"backend: {picked.backend.name} on {picked.backend.device} ({picked.reason}); geometry: {geometry}"
    )


def run_infer(
    paths: list[str],
    model: Path | None = None,
    category: str | None = None,
    workdir: Path = DEFAULT_WORKDIR,
    out: Path = DEFAULT_OUT,
    backend: str = "auto",
    geometry: str = "auto",
    ply: bool = False,
    overwrite: bool = False,
    threads: int = 0,
) -> int:
    """The command's body (also called by the demo); returns the number of failed scans."""
    from st3d_edge.console import err, progress_bar, wrote
    from st3d_edge.console import out as stdout
    from st3d_edge.errors import St3dError
    from st3d_edge.runtime import outputs
    from st3d_edge.runtime.pipeline import build_scorer

    scans = expand_scan_paths(paths)
    scorer, picked = build_scorer(resolve_bundle(model, category, workdir), backend, geometry, threads)
    err.print(describe_pick(scorer, picked), highlight=False, markup=False)
    names = outputs.output_names(scans)
    results_path = out / outputs.RESULTS_NAME
    done = {r["file"]: r for r in outputs.read_results(results_path)}
    failed = skipped = scored = 0
    with progress_bar() as bar:
        task = bar.add_task("infer", total=len(scans), status="")
        for scan_path in scans:
            key = str(scan_path.resolve())
            name = names[scan_path]
            files = {"map": out / f"{name}_map.tiff", "heatmap": out / f"{name}_heatmap.png"}
            if ply:
                files["ply"] = out / f"{name}.ply"
            if not overwrite and _already_done(done.get(key), out, ply):
                skipped += 1
                bar.advance(task)
                continue
            try:
                result = scorer.score_file(scan_path)
            except St3dError as exc:
                failed += 1
                print_error(exc, bar.console)
                bar.advance(task)
                continue
            vmax = outputs.colour_scale_max(result.point_scores, scorer.pixel_threshold)
            outputs.write_map_tiff(files["map"], result.anomaly_map)
            outputs.write_heatmap_png(files["heatmap"], result.anomaly_map, result.valid, vmax)
            if ply:
                outputs.write_ply(files["ply"], result.points, result.point_scores, vmax)
            record = result.record()
            record["file"] = key
            record["outputs"] = {kind: path.name for kind, path in files.items()}
            outputs.append_result(results_path, record)
            scored += 1
            stdout.print(
                f"{scan_path}\t{result.image_score:.6g}\t{result.verdict}\t{result.total_ms:.1f} ms",
                highlight=False,
                soft_wrap=True,
            )
            bar.update(task, advance=1, status=f"{result.verdict} {result.total_ms:.0f} ms")
    err.print(f"scored {scored}, skipped {skipped} (already done), failed {failed}", highlight=False)
    if scored:
        wrote(out, "maps, heatmaps" + (", point clouds" if ply else ""))
        wrote(results_path, "results")
    return failed


def _already_done(record: dict | None, out: Path, ply: bool) -> bool:
    """A scan is done when results.jsonl has its line and every file that line lists exists.

    The line, not today's file names, decides: names depend on the batch's common folder, so
    the same scan may have been written under another name by an earlier run.
    """
    if record is None:
        return False
    written = record.get("outputs") or {}
    if not {"map", "heatmap"} <= set(written) or (ply and "ply" not in written):
        return False
    return all((out / name).exists() for name in written.values())


def register(app: typer.Typer) -> None:
    @app.command("infer")
    def infer(
        paths: Annotated[
            list[str], typer.Argument(help="Scan TIFFs (organized xyz), folders of them, or quoted globs.")
        ],
        model: BundleOption = None,
        category: BundleCategoryOption = None,
        workdir: BundleWorkdirOption = DEFAULT_WORKDIR,
        out: Annotated[Path, typer.Option("--out", help="Output folder.")] = DEFAULT_OUT,
        backend: BackendOption = BackendChoice.auto,
        geometry: GeometryOption = DeviceChoice.auto,
        ply: Annotated[bool, typer.Option("--ply", help="Also write a PLY point cloud per scan.")] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Score scans already done again.")
        ] = False,
        threads: Annotated[int, typer.Option("--threads", help="onnxruntime CPU threads (0: all).")] = 0,
    ) -> None:
        """Score scans: anomaly map TIFF, heatmap PNG, optional PLY and results.jsonl per scan."""
        with user_errors():
            failed = run_infer(
                paths, model, category, workdir, out, backend.value, geometry.value, ply, overwrite, threads
            )
        if failed:
            raise typer.Exit(1)
