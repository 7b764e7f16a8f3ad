"""`st3d-edge train`: train the student of one category, its statistics and thresholds (paper 3.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from st3d_edge.commands._common import (
    DeviceChoice,
    EpochsOption,
    OverwriteRunOption,
    PresetOption,
    ResumeOption,
    RunsDirOption,
    ScoringChoice,
    TrainDeviceOption,
    dim_option,
    points_option,
    user_errors,
)
from st3d_edge.train.options import SamplerChoice, check_positive, model_options_given, resolve_preset


def train_command(
    data: Annotated[Path, typer.Option(help="Dataset root in MVTec 3D-AD layout.")],
    category: Annotated[str, typer.Option(help="Category folder inside --data.")],
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
        int | None, typer.Option(help="Seed of the student's weights and the visiting order.")
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
) -> None:
    """Train a student for one category against a pretrained teacher."""
    with user_errors():
        check_positive(epochs=epochs, n=n, d=d)
        if not 0.0 <= pixel_fpr < 1.0:
            raise typer.BadParameter(f"must be in [0, 1), got {pixel_fpr}", param_hint="--pixel-fpr")
        from st3d_edge.errors import file_error

        if not (data / category).is_dir():
            raise file_error(data / category, "category folder not found")
        settings = resolve_preset(
            preset, seed=seed, n=n, d=d, sampler=sampler, absolute_coords=absolute_coords
        )
        settings.student.random_teacher = random_teacher
        settings.model.scoring = scoring.value
        if epochs is not None:
            settings.student.epochs = epochs
            settings.student.steps = 0  # an explicit epoch count replaces the preset's step budget
        teacher_dir = None if random_teacher else resolve_teacher(teacher, workdir, settings)

        from st3d_edge.console import err, out, wrote
        from st3d_edge.train.common import torch_threads
        from st3d_edge.train.distributed import init_from_env
        from st3d_edge.train.student import STATS, STUDENT, TEACHER, THRESHOLDS, train_category

        run_dir = workdir / (name or category)
        if resume:
            from st3d_edge.train.runfolder import check_resume

            given = {
                **model_options_given(preset, n, d, sampler, absolute_coords),
                "student.seed": seed,
                "student.random_teacher": True if random_teacher else None,
                "job.data": str(data.resolve()),
                "job.teacher": str(teacher.resolve()) if teacher else None,
            }
            check_resume(run_dir, given)
        env = init_from_env(device.value)
        threads = torch_threads(env.world)
        if env.is_main:
            err.print(
                f"training {category} in {run_dir} on {env.device} "
                f"({env.world} process(es), {threads} thread(s) each)",
                highlight=False,
            )
        result = train_category(
            run_dir,
            settings,
            data_root=data,
            category=category,
            teacher_dir=teacher_dir,
            env=env,
            resume=resume,
            overwrite=overwrite,
            pixel_fpr=pixel_fpr,
        )
        if env.is_main:
            for file in ("config.json", STUDENT, TEACHER, "last.pt", "metrics.jsonl", STATS, THRESHOLDS):
                wrote(run_dir / file)
            t = result.thresholds
            out.print(
                f"{category}: best validation loss {result.best_val:.6g} at epoch {result.best_epoch}; "
                f"s = {result.s:.6g}; thresholds pixel {t.pixel:.6g} (fpr {t.pixel_fpr}), "
                f"image {t.image:.6g}",
                highlight=False,
            )


def resolve_teacher(teacher: Path | None, workdir: Path, settings) -> Path:
    """The teacher folder a run uses: the one given, the workdir's own, or the shipped one.

    Without any, the workdir's (missing) one: training then says how to get a teacher, after
    it has checked the data.
    """
    from st3d_edge.teachers import shipped_teacher

    if teacher is not None:
        return teacher
    own = workdir / "teacher"
    if (own / "teacher.pt").is_file():
        return own
    return shipped_teacher(settings) or own


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
