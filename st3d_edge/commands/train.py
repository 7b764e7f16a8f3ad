"""`st3d-edge train`: train the student of one category, its statistics and thresholds (paper 3.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from st3d_edge.commands._common import (
    DeviceChoice,
    EpochsOption,
    IntrinsicsOption,
    OverwriteRunOption,
    PresetOption,
    ResumeOption,
    RunsDirOption,
    ScoringChoice,
    TrainDeviceOption,
    UnitsChoice,
    UnitsOption,
    VerboseOption,
    dim_option,
    points_option,
    user_errors,
)
from st3d_edge.train.options import SamplerChoice, check_positive


def train_command(
    data: Annotated[
        Path | None, typer.Option(help="Dataset root in MVTec 3D-AD layout (with --category).")
    ] = None,
    category: Annotated[
        str | None,
        typer.Option(
            help="Category folder inside --data; with --good, the run's name (default: the folder's)."
        ),
    ] = None,
    good: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DIR_OR_GLOB",
            help="Good scans in any supported format, instead of --data (repeat for several).",
        ),
    ] = None,
    validation: Annotated[
        list[str] | None,
        typer.Option(metavar="DIR_OR_GLOB", help="Validation scans for --good (default: a split of --good)."),
    ] = None,
    val_fraction: Annotated[
        float, typer.Option(help="With --good and no --validation: share of the scans held out (seeded).")
    ] = 0.1,
    units: UnitsOption = UnitsChoice.m,
    intrinsics: IntrinsicsOption = None,
    preset: PresetOption = None,
    workdir: RunsDirOption = Path("st3d-runs"),
    name: Annotated[
        str | None, typer.Option(help="Run folder name inside --workdir (default: category).")
    ] = None,
    teacher: Annotated[
        Path | None,
        typer.Option(
            help="Teacher run folder (default: <workdir>/teacher if it exists, else the teacher shipped "
            "with the package for the preset)."
        ),
    ] = None,
    random_teacher: Annotated[
        bool, typer.Option("--random-teacher", help="Paper ablation: a randomly initialised teacher.")
    ] = False,
    absolute_coords: Annotated[
        bool, typer.Option("--absolute-coords", help="Paper ablation (needs a teacher pretrained with it).")
    ] = False,
    device: TrainDeviceOption = DeviceChoice.auto,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the student's weights, the visiting order and the split.")
    ] = None,
    epochs: EpochsOption = None,
    n: Annotated[
        int | None, points_option("Override the number of points per scan (--points under torchrun).")
    ] = None,
    d: Annotated[
        int | None,
        dim_option("Override the descriptor dimension; must match the teacher's (--dim under torchrun)."),
    ] = None,
    sampler: Annotated[SamplerChoice | None, typer.Option(help="How scans are reduced to n points.")] = None,
    scoring: Annotated[
        ScoringChoice,
        typer.Option(
            help="Anomaly score to calibrate and ship: fused (student + FPFH bank) or student (3D-ST)."
        ),
    ] = ScoringChoice.fused,
    pixel_fpr: Annotated[
        float, typer.Option(help="False-positive rate on good validation points for the pixel threshold.")
    ] = 0.01,
    resume: ResumeOption = False,
    overwrite: OverwriteRunOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Train a student for one category against a pretrained teacher."""
    from st3d_edge.console import set_verbose

    set_verbose(verbose)
    with user_errors():
        check_positive(epochs=epochs, n=n, d=d)
        if not 0.0 <= pixel_fpr < 1.0:
            raise typer.BadParameter(f"must be in [0, 1), got {pixel_fpr}", param_hint="--pixel-fpr")
        if not 0.0 < val_fraction < 1.0:
            raise typer.BadParameter(f"must be in (0, 1), got {val_fraction}", param_hint="--val-fraction")
        from st3d_edge.console import out, wrote
        from st3d_edge.train.api import train_detector
        from st3d_edge.train.student import STATS, STUDENT, TEACHER, THRESHOLDS

        result = train_detector(
            category=category,
            data=data,
            good=good or None,
            validation=validation or None,
            val_fraction=val_fraction,
            units=units.value,
            intrinsics=intrinsics,
            workdir=workdir,
            name=name,
            teacher=teacher,
            preset=preset.value if preset else None,
            random_teacher=random_teacher,
            absolute_coords=absolute_coords,
            device=device.value,
            seed=seed,
            epochs=epochs,
            n=n,
            d=d,
            sampler=sampler.value if sampler else None,
            pixel_fpr=pixel_fpr,
            scoring=scoring.value,
            resume=resume,
            overwrite=overwrite,
        )
        if result.thresholds is not None:  # only the main rank has them
            run_dir = result.run_dir
            for file in ("config.json", STUDENT, TEACHER, "last.pt", "metrics.jsonl", STATS, THRESHOLDS):
                wrote(run_dir / file)
            t = result.thresholds
            out.print(
                f"{run_dir.name}: best validation loss {result.best_val:.6g} at epoch {result.best_epoch}; "
                f"s = {result.s:.6g}; thresholds pixel {t.pixel:.6g} (fpr {t.pixel_fpr}), "
                f"image {t.image:.6g}",
                highlight=False,
            )


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
