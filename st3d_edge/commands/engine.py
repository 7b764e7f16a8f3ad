"""`st3d-edge engine BUNDLE`: build the bundle's TensorRT engine on the device, without torch.

Needs the edge install (``runtime`` or ``jetson``) and TensorRT; see
``st3d_edge.runtime.engine_build`` for what it checks before it keeps the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from st3d_edge.commands._common import ResignOption, user_errors
from st3d_edge.commands.export import (
    Precision,
    ProfileMaxOption,
    ProfileMinOption,
    ProfileOptOption,
    WorkspaceOption,
)


def engine(
    bundle: Annotated[Path, typer.Argument(help="Export bundle folder (from `st3d-edge export`).")],
    precision: Annotated[
        Precision | None,
        typer.Option("--precision", help="Graph to build from (default: the bundle's precision)."),
    ] = None,
    profile_min: ProfileMinOption = None,
    profile_opt: ProfileOptOption = None,
    profile_max: ProfileMaxOption = None,
    workspace_mib: WorkspaceOption = 2048,
    sign: ResignOption = None,
) -> None:
    """Build, check against onnxruntime and add a TensorRT engine to a bundle, on this device."""
    with user_errors():
        from st3d_edge.console import err, wrote
        from st3d_edge.console import out as stdout
        from st3d_edge.runtime.engine_build import engine_for_bundle
        from st3d_edge.runtime.tensorrt_build import EngineOptions

        options = EngineOptions(profile_min, profile_opt, profile_max, workspace_mib)
        err.print(f"building a TensorRT engine for {bundle} ...", highlight=False)
        report = engine_for_bundle(
            bundle, precision=precision.value if precision else None, options=options, signing_key=sign
        )
        info, check = report.bundle.engine, report.check
        stdout.print(
            f"engine: {info.precision}, TensorRT {info.device.tensorrt_version} on {info.device.gpu_name} "
            f"(sm {info.device.compute_capability}), profile n {info.profile_min}/{info.profile_opt}/"
            f"{info.profile_max}",
            highlight=False,
        )
        stdout.print(
            f"check vs onnxruntime: {check.clouds} clouds, {check.points} points, max relative error "
            f"{check.max_relative_error:.2e} (bound {check.limit:.0e})",
            highlight=False,
        )
        wrote(report.bundle.path / info.file, "engine")


def register(app: typer.Typer) -> None:
    app.command("engine")(engine)
