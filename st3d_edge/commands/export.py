"""`st3d-edge export`: turn a trained category into a bundle the edge runtime can trust.

Reads ``<workdir>/<category>`` (the run folder `st3d-edge train` wrote), writes the bundle to
``--out`` (default ``<workdir>/<category>/bundle``) and prints the files with their sizes and
the parity check it ran (onnxruntime against PyTorch on a few synthetic clouds).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from st3d_edge.commands._common import user_errors

DEFAULT_WORKDIR = Path("st3d-runs")


class ExportFormat(str, Enum):
    onnx = "onnx"
    engine = "engine"
    all = "all"
    triton = "triton"


class Precision(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"


# TensorRT engine options, shared with `st3d-edge engine`.
ProfileMinOption = Annotated[
    int | None, typer.Option("--profile-min", help="Engine profile: fewest points (default: 1024).")
]
ProfileOptOption = Annotated[
    int | None, typer.Option("--profile-opt", help="Engine profile: points tuned for (default: n).")
]
ProfileMaxOption = Annotated[
    int | None, typer.Option("--profile-max", help="Engine profile: most points (default: n).")
]
WorkspaceOption = Annotated[int, typer.Option("--workspace-mib", help="TensorRT workspace limit.")]


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def export(
    category: Annotated[str, typer.Option("--category", help="Trained category to export, e.g. tire.")],
    workdir: Annotated[
        Path,
        typer.Option(
            "--workdir", help="Folder holding the run folders (<workdir>/<category> from `st3d-edge train`)."
        ),
    ] = DEFAULT_WORKDIR,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="onnx: ONNX graph(s); engine: plus a TensorRT engine; all: engine and a Triton "
            "repository; triton: ONNX and a Triton repository.",
        ),
    ] = ExportFormat.onnx,
    precision: Annotated[
        Precision,
        typer.Option("--precision", help="fp16 adds model_fp16.onnx and builds the engine from it."),
    ] = Precision.fp32,
    out: Annotated[
        Path | None, typer.Option("--out", help="Bundle folder (default: <workdir>/<category>/bundle).")
    ] = None,
    profile_min: ProfileMinOption = None,
    profile_opt: ProfileOptOption = None,
    profile_max: ProfileMaxOption = None,
    workspace_mib: WorkspaceOption = 2048,
    debug_outputs: Annotated[
        bool, typer.Option("--debug-outputs", help="Also output student and normalised teacher features.")
    ] = False,
    sign: Annotated[
        Path | None,
        typer.Option("--sign", help="Sign the manifest with this Ed25519 private key (st3d-edge keygen)."),
    ] = None,
) -> None:
    """Export a trained category: ONNX scorer graph, optional TensorRT engine, manifest."""
    with user_errors():
        from st3d_edge.console import err, wrote
        from st3d_edge.console import out as stdout
        from st3d_edge.export.bundle_writer import write_bundle
        from st3d_edge.runtime.tensorrt_build import EngineOptions

        run_dir = workdir / category
        target = out if out is not None else run_dir / "bundle"
        options = EngineOptions(profile_min, profile_opt, profile_max, workspace_mib)
        err.print(f"exporting {run_dir} ({fmt.value}, {precision.value}) ...", highlight=False)
        report = write_bundle(
            run_dir, target, fmt=fmt.value, precision=precision.value, engine_options=options,
            feature_outputs=debug_outputs, signing_key=sign,
        )  # fmt: skip
        bundle = report.bundle
        stdout.print(
            f"bundle {bundle.path}: category {bundle.category}, n={bundle.n}, k={bundle.k}, d={bundle.d}, "
            f"s={bundle.s:.6g}, precision {bundle.precision}",
            highlight=False,
        )
        for name, size in sorted(report.sizes.items()):
            stdout.print(f"  {name:<22} {_size(size):>10}", highlight=False)
        stdout.print("  manifest.json", highlight=False)
        parity = report.parity
        stdout.print(
            f"parity onnxruntime vs torch: {parity['clouds']} clouds, {parity['points']} points, "
            f"max relative error {parity['max_relative_error']:.2e} (limit {parity['limit']:.0e})",
            highlight=False,
        )
        if "fp16_max_relative_drift" in parity:
            stdout.print(
                f"fp16 graph vs fp32 graph: max relative drift {parity['fp16_max_relative_drift']:.2e}",
                highlight=False,
            )
        change = report.fp16_validation
        if change is not None:
            pixels = change["pixels_over_threshold"]
            stdout.print(
                f"fp16 vs fp32 on {change['scans']} {change['split']} scans: image score max change "
                f"{change['max_image_score_change']:.2e} (relative), {change['verdict_changes']} verdicts "
                f"changed, pixels over the threshold {pixels['fp32']} -> {pixels['fp16']}",
                highlight=False,
            )
        elif report.fp16_validation_skipped:
            err.print(f"fp16 vs fp32 on validation scans: skipped ({report.fp16_validation_skipped})")
        if bundle.engine is not None:
            engine, device = bundle.engine, bundle.engine.device
            stdout.print(
                f"engine: TensorRT {device.tensorrt_version} on {device.gpu_name} "
                f"(sm {device.compute_capability}), "
                f"profile n {engine.profile_min}/{engine.profile_opt}/{engine.profile_max}",
                highlight=False,
            )
        if bundle.signatures:
            stdout.print(f"signed by key {bundle.signatures[0]['key_id']}", highlight=False)
        wrote(bundle.path, "bundle")
        if report.triton_dir is not None:
            wrote(report.triton_dir, "Triton model")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
