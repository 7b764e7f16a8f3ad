"""`st3d-edge infer`: score scans with an exported bundle, on the edge, without torch.

A thin caller of :class:`st3d_edge.runtime.detector.Detector`. Per organized scan it writes
``<name>_map.tiff`` and ``<name>_heatmap.png``; with ``--ply`` ``<name>.ply``, with
``--overlay`` ``<name>_overlay.png``, with ``--mask`` ``<name>_mask.png``
(st3d_edge.runtime.overlay). Per unorganized scan (PLY, PCD, N x 3, text) it writes
``<name>.ply`` with a score per point (and ``<name>.pcd`` for a PCD input). Every scan gets one
line in ``results.jsonl`` (formats: st3d_edge.runtime.outputs). A scan is skipped when its
files and its results line already exist, unless ``--overwrite``. A scan that cannot be read
is reported in one line and skipped; the exit code is then 1.
"""

from __future__ import annotations

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
    IntrinsicsOption,
    UnitsChoice,
    UnitsOption,
    print_error,
    user_errors,
)

DEFAULT_WORKDIR = Path("st3d-runs")
DEFAULT_OUT = Path("st3d-infer")


def resolve_bundle(model: Path | None, category: str | None, workdir: Path) -> Path:
    """--model, or the bundle of --category in the run folder (<workdir>/<category>/bundle)."""
    from st3d_edge.errors import St3dError

    if model is not None:
        return model
    if category is None:
        raise St3dError("give the bundle with --model BUNDLE, or --category NAME to use the run folder's")
    return workdir / category / "bundle"


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
    units: str = "m",
    intrinsics: Path | None = None,
    overlay: bool = False,
    mask: bool = False,
) -> int:
    """The command's body (also called by the demo); returns the number of failed scans."""
    from st3d_edge.console import err, progress_bar, wrote
    from st3d_edge.console import out as stdout
    from st3d_edge.data.scanlist import expand_scan_paths
    from st3d_edge.errors import St3dError
    from st3d_edge.runtime import outputs
    from st3d_edge.runtime.detector import Detector

    scans = expand_scan_paths(paths)
    detector = Detector(
        resolve_bundle(model, category, workdir),
        backend,
        geometry,
        threads=threads,
        units=units,
        intrinsics=intrinsics,
    )
    err.print(detector.describe(), highlight=False, markup=False)
    if mask and detector.pixel_threshold is None:
        raise St3dError(
            f"{detector.bundle.path}: --mask needs a pixel threshold and the bundle has none; "
            "set one with `st3d-edge calibrate`"
        )
    wanted = {kind for kind, on in (("ply", ply), ("overlay", overlay), ("mask", mask)) if on}
    names = outputs.output_names(scans)
    results_path = out / outputs.RESULTS_NAME
    done = {r["file"]: r for r in outputs.read_results(results_path)}
    failed = skipped = scored = 0
    with progress_bar() as bar:
        task = bar.add_task("infer", total=len(scans), status="")
        for scan_path in scans:
            key = str(scan_path.resolve())
            if not overwrite and _already_done(done.get(key), out, wanted):
                skipped += 1
                bar.advance(task)
                continue
            try:
                result = detector(scan_path)
            except St3dError as exc:
                failed += 1
                print_error(exc, bar.console)
                bar.advance(task)
                continue
            files = outputs.write_scan_outputs(
                out,
                names[scan_path],
                result,
                detector.pixel_threshold,
                ply=ply,
                pcd=scan_path.suffix.lower() == ".pcd",
                overlay=overlay,
                mask=mask,
            )
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


def _already_done(record: dict | None, out: Path, wanted: set[str]) -> bool:
    """A scan is done when results.jsonl has its line and every file that line lists exists.

    The line, not today's file names, decides: names depend on the batch's common folder, so
    the same scan may have been written under another name by an earlier run. An organized
    scan's line lists a map and a heatmap (and the ``wanted`` extras: ply, overlay, mask), an
    unorganized one's a PLY.
    """
    if record is None:
        return False
    written = record.get("outputs") or {}
    organized = {"map", "heatmap"} <= set(written)
    if not organized and "ply" not in written or organized and not wanted <= set(written):
        return False
    return all((out / name).exists() for name in written.values())


def register(app: typer.Typer) -> None:
    @app.command("infer")
    def infer(
        paths: Annotated[
            list[str],
            typer.Argument(
                help="Scans (TIFF, NPY/NPZ, PLY, PCD, XYZ text, depth PNG/TIFF), folders of them, "
                "or quoted globs."
            ),
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
        units: UnitsOption = UnitsChoice.m,
        intrinsics: IntrinsicsOption = None,
        overlay: Annotated[
            bool,
            typer.Option(
                "--overlay", help="Also write the heatmap over the part's picture, with a colour bar."
            ),
        ] = False,
        mask: Annotated[
            bool, typer.Option("--mask", help="Also write the defect mask at the pixel threshold (PNG).")
        ] = False,
    ) -> None:
        """Score scans: anomaly map TIFF, heatmap PNG, optional PLY and results.jsonl per scan."""
        with user_errors():
            failed = run_infer(
                paths,
                model,
                category,
                workdir,
                out,
                backend.value,
                geometry.value,
                ply,
                overwrite,
                threads,
                units.value,
                intrinsics,
                overlay,
                mask,
            )
        if failed:
            raise typer.Exit(1)
