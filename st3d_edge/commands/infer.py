"""`st3d-edge infer`: score scans with an exported bundle, on the edge, without torch.

A thin caller of :class:`st3d_edge.runtime.detector.Detector`. Per organized scan it writes
``<name>_map.tiff`` and ``<name>_heatmap.png``; with ``--ply`` ``<name>.ply``, with
``--overlay`` ``<name>_overlay.png``, with ``--mask`` ``<name>_mask.png``
(st3d_edge.runtime.overlay). Per unorganized scan (PLY, PCD, N x 3, text) it writes
``<name>.ply`` with a score per point (and ``<name>.pcd`` for a PCD input). Every scan gets one
line in ``results.jsonl`` (formats: st3d_edge.runtime.outputs). A scan is skipped when the same
content was scored with the same bundle and its files still exist, unless ``--overwrite``. A
scan that cannot be read is reported in one line and recorded; the exit code is then 1.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    IntrinsicsOption,
    UnitsChoice,
    UnitsOption,
    print_error,
    user_errors,
)
from st3d_edge.commands._signals import Interrupted, stop_on_signal

DEFAULT_WORKDIR = Path("st3d-runs")
DEFAULT_OUT = Path("st3d-infer")
OUTPUT_SUFFIXES = ("_map.tiff", "_map.tif", "_heatmap.png", "_overlay.png", "_mask.png")


def is_own_output(path: Path, out: Path | None) -> bool:
    """A file infer wrote (under --out, or named like one of its maps): never read as a scan."""
    if path.name.lower().endswith(OUTPUT_SUFFIXES):
        return True
    if out is None:
        return False
    root = out.resolve()
    return root in path.resolve().parents


def scan_paths(patterns: list[str], out: Path | None = None) -> list[Path]:
    """The scans to score (:func:`st3d_edge.data.scanlist.expand_scan_paths`) without infer's own
    outputs (:func:`is_own_output`), so pointing infer at a folder that holds its --out does not
    score yesterday's maps."""
    from st3d_edge.data.scanlist import expand_scan_paths
    from st3d_edge.errors import St3dError

    found = []
    for pattern in patterns:
        matches = [p for p in expand_scan_paths([pattern]) if not is_own_output(p, out)]
        if not matches:
            raise St3dError(f"{pattern}: only infer's own outputs found (maps, or files under --out)")
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
    trust: list[Path] | None = None,
    units: str = "m",
    intrinsics: Path | None = None,
    overlay: bool = False,
    mask: bool = False,
) -> int:
    """The command's body (also called by the demo); returns the number of failed scans.

    Ctrl-C (or SIGTERM) lets the scan in progress finish and be recorded, then stops with
    :class:`Interrupted`; a second one ends the process at once (exit 130), which the atomic
    writes make safe. Python's own KeyboardInterrupt is not used inside the loop because it
    can arrive while scipy's kNN threads run, which crashes the interpreter.
    """
    from st3d_edge.console import err, progress_bar, wrote
    from st3d_edge.errors import St3dError
    from st3d_edge.runtime import outputs
    from st3d_edge.runtime.detector import Detector

    scans = scan_paths(paths, out)
    detector = Detector(
        resolve_bundle(model, category, workdir),
        backend,
        geometry,
        threads=threads,
        units=units,
        intrinsics=intrinsics,
        trust=trust,
    )
    err.print(detector.describe(), highlight=False, markup=False)
    if mask and detector.pixel_threshold is None:
        raise St3dError(
            f"{detector.bundle.path}: --mask needs a pixel threshold and the bundle has none; "
            "set one with `st3d-edge calibrate`"
        )
    prepare_out(out)
    names = outputs.output_names(scans)
    results_path = out / outputs.RESULTS_NAME
    outputs.drop_torn_tail(results_path)
    done = {r["file"]: r for r in outputs.read_results(results_path)}
    wanted = {kind for kind, on in (("ply", ply), ("overlay", overlay), ("mask", mask)) if on}
    batch = Batch(detector, out, results_path, done, overwrite, wanted)
    counts = {"scored": 0, "skipped": 0, "failed": 0}
    with progress_bar() as bar, stop_on_signal() as stop:
        task = bar.add_task("infer", total=len(scans), status="")
        for scan_path in scans:
            if stop.signum:
                break
            outcome = _infer_one(batch, scan_path, names[scan_path], bar)
            counts[outcome] += 1
            bar.advance(task)
    err.print(
        f"scored {counts['scored']}, skipped {counts['skipped']} (already done), failed {counts['failed']}",
        highlight=False,
    )
    if counts["scored"]:
        wrote(out, "maps, heatmaps" + (", point clouds" if ply else ""))
    if counts["scored"] or counts["failed"]:
        wrote(results_path, "results")
    if stop.signum:
        raise Interrupted(stop.signum, len(scans) - sum(counts.values()))
    return counts["failed"]


@dataclass
class Batch:
    """What every scan of one infer run shares."""

    detector: Any  # st3d_edge.runtime.detector.Detector
    out: Path
    results_path: Path
    done: dict[str, dict]  # resolved scan path -> its last record in results.jsonl
    overwrite: bool
    wanted: set[str]  # the optional outputs asked for: ply, overlay, mask


def _infer_one(batch: Batch, scan_path: Path, name: str, bar: Any) -> str:
    """Score one scan, write its files and its record; returns scored, skipped or failed."""
    from st3d_edge.console import out as stdout
    from st3d_edge.errors import St3dError
    from st3d_edge.runtime import outputs

    detector = batch.detector
    key = str(scan_path.resolve())
    provenance = outputs.provenance(detector.bundle)
    try:
        identity = outputs.scan_identity(scan_path)
        if not batch.overwrite and _already_done(batch.done.get(key), identity, detector.bundle, batch):
            return "skipped"
        result = detector(scan_path)
    except St3dError as exc:
        print_error(exc, bar.console)
        outputs.append_result(batch.results_path, {"file": key, "error": str(exc), **provenance})
        return "failed"
    files = outputs.write_scan_outputs(
        batch.out,
        name,
        result,
        detector.pixel_threshold,
        ply="ply" in batch.wanted,
        pcd=scan_path.suffix.lower() == ".pcd",
        overlay="overlay" in batch.wanted,
        mask="mask" in batch.wanted,
    )
    record = {**result.record(), **provenance, "file": key, "scan": identity}
    record["outputs"] = {kind: path.name for kind, path in files.items()}
    outputs.append_result(batch.results_path, record)
    stdout.print(
        f"{scan_path}\t{result.image_score:.6g}\t{result.verdict}\t{result.total_ms:.1f} ms",
        highlight=False,
        soft_wrap=True,
    )
    bar.update(bar.task_ids[0], status=f"{result.verdict} {result.total_ms:.0f} ms")
    return "scored"


def prepare_out(out: Path) -> None:
    """Create --out, refuse one that is a file or not writable, and clear a killed run's temporaries."""
    import os

    from st3d_edge.errors import file_error
    from st3d_edge.io_utils import remove_stale_temporaries

    if out.exists() and not out.is_dir():
        raise file_error(out, "is a file, not a folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK | os.X_OK):
        raise file_error(out, "output folder is not writable")
    remove_stale_temporaries(out)


def _already_done(record: dict | None, identity: dict, bundle: Any, batch: Batch) -> bool:
    """Done: the last record of this scan scored the same content with the same bundle, and
    every file it lists still exists.

    The record, not today's file names, decides: names depend on the batch's common folder, so
    the same scan may have been written under another name by an earlier run.
    """
    if record is None or "error" in record or record.get("bundle_id") != bundle.manifest_sha256:
        return False
    if record.get("scan") != identity:
        return False
    written = record.get("outputs") or {}
    organized = {"map", "heatmap"} <= set(written)
    # an organized scan's record lists a map and a heatmap (and the wanted extras), an unorganized one's a PLY
    if not organized and "ply" not in written or organized and not batch.wanted <= set(written):
        return False
    return all((batch.out / name).exists() for name in written.values())


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
        trust: Annotated[
            list[Path] | None,
            typer.Option(
                "--trust",
                help="Public key (PEM) a bundle must be signed by; repeatable. The *.pub files of "
                "$ST3D_EDGE_TRUST_DIR (default ~/.config/st3d-edge/trusted-keys) are trusted too.",
            ),
        ] = None,
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
                trust,
                units.value,
                intrinsics,
                overlay,
                mask,
            )
        if failed:
            raise typer.Exit(1)
