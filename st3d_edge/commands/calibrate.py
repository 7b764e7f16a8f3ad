"""`st3d-edge calibrate`: new thresholds for a bundle from scans, on the device, without torch.

The scans go through the deployed pipeline (st3d_edge.calibration.deployed); the thresholds are
written into the bundle's manifest unless ``--dry-run``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from st3d_edge.commands._common import (
    BackendChoice,
    BackendOption,
    DeviceChoice,
    GeometryOption,
    IntrinsicsOption,
    MasksOption,
    ResignOption,
    UnitsChoice,
    UnitsOption,
    user_errors,
)


def calibrate_command(
    bundle: Annotated[Path, typer.Argument(help="Export bundle folder to recalibrate.")],
    good: Annotated[
        list[str], typer.Option(metavar="DIR_OR_GLOB", help="Scans of good parts (repeat for several).")
    ],
    defective: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DIR_OR_GLOB", help="Scans of defective parts: the image threshold maximises F1."
        ),
    ] = None,
    masks: MasksOption = None,
    pixel_fpr: Annotated[
        float, typer.Option(help="Share of good points allowed above the pixel threshold.")
    ] = 0.01,
    image_fpr: Annotated[
        float | None,
        typer.Option(help="Target false-reject rate of good scans (default 0, or F1 with --defective)."),
    ] = None,
    image_threshold: Annotated[float | None, typer.Option(help="Set the image threshold to this.")] = None,
    units: UnitsOption = UnitsChoice.m,
    intrinsics: IntrinsicsOption = None,
    backend: BackendOption = BackendChoice.auto,
    geometry: GeometryOption = DeviceChoice.auto,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report the thresholds without writing the manifest.")
    ] = False,
    sign: ResignOption = None,
) -> None:
    """Recompute the pixel and image thresholds through the deployed pipeline; write them to the bundle."""
    with user_errors():
        for name, value in (("--pixel-fpr", pixel_fpr), ("--image-fpr", image_fpr)):
            if value is not None and not 0.0 <= value < 1.0:
                raise typer.BadParameter(f"must be in [0, 1), got {value}", param_hint=name)
        if image_threshold is not None and not math.isfinite(image_threshold):
            raise typer.BadParameter(
                f"must be a finite number, got {image_threshold}", param_hint="--image-threshold"
            )
        if image_fpr is not None and image_threshold is not None:
            raise typer.BadParameter(
                "give --image-fpr or --image-threshold, not both", param_hint="--image-fpr"
            )
        if masks is not None and not defective:
            raise typer.BadParameter("masks belong to --defective scans", param_hint="--masks")
        from st3d_edge.calibration.deployed import calibrate_bundle
        from st3d_edge.console import err, out, wrote

        calibration, old = calibrate_bundle(
            bundle,
            good,
            defective=defective,
            masks=masks,
            pixel_fpr=pixel_fpr,
            image_fpr=image_fpr,
            image_threshold=image_threshold,
            units=units.value,
            intrinsics=intrinsics,
            backend=backend.value,
            geometry=geometry.value,
            write=not dry_run,
            log=lambda line: err.print(line, highlight=False, markup=False),
            signing_key=sign,
        )
        for line in report_lines(calibration, old):
            out.print(line, highlight=False)
        if not dry_run:
            wrote(bundle / "manifest.json", "thresholds")


def report_lines(c, old: dict) -> list[str]:
    def was(key: str) -> str:
        return f" (was {old[key]:.6g})" if isinstance(old.get(key), int | float) else ""

    rule = {
        "given": "as given",
        "f1": "max F1 over good and defective",
        "fpr": f"good scans at fpr {c.image_fpr}",
    }
    lines = [
        f"pixel threshold {c.pixel:.6g}{was('pixel')}: "
        f"good points above it {c.pixel_false_positive_rate:.4f} "
        f"(target {c.pixel_fpr}, {c.good_points} points of {c.good_scans} good scans)",
        f"image threshold {c.image:.6g}{was('image')} ({rule[c.image_rule]}): "
        f"false rejects {c.false_reject_rate:.4f} of {c.good_scans} good scans",
    ]
    if c.detection_rate is not None:
        lines.append(f"detection rate {c.detection_rate:.4f} of {c.defective_scans} defective scans")
    if c.defect_pixel_rate is not None:
        lines.append(f"defect points above the pixel threshold {c.defect_pixel_rate:.4f} (masks)")
    return lines


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_command)
