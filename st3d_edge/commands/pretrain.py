"""`st3d-edge pretrain`: pretrain the teacher on synthetic scenes (paper 3.1, 4.1)."""

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
    TrainDeviceOption,
    VerboseOption,
    dim_option,
    points_option,
    user_errors,
)
from st3d_edge.train.options import SamplerChoice, check_positive, model_options_given, resolve_preset


def pretrain_command(
    preset: PresetOption = None,
    workdir: RunsDirOption = Path("st3d-runs"),
    name: Annotated[str, typer.Option(help="Run folder name inside --workdir.")] = "teacher",
    modelnet: Annotated[
        Path | None, typer.Option(help="ModelNet10 folder (.off files); procedural shapes when omitted.")
    ] = None,
    device: TrainDeviceOption = DeviceChoice.auto,
    seed: Annotated[int | None, typer.Option(help="Seed of the scenes, weights and draws.")] = None,
    epochs: EpochsOption = None,
    scenes: Annotated[int | None, typer.Option(help="Override the number of training scenes.")] = None,
    val_scenes: Annotated[int | None, typer.Option(help="Override the number of validation scenes.")] = None,
    n: Annotated[
        int | None, points_option("Override the number of points per scene (--points under torchrun).")
    ] = None,
    d: Annotated[
        int | None,
        dim_option("Override the descriptor dimension (64 or 128 in the paper; --dim under torchrun)."),
    ] = None,
    sampler: Annotated[SamplerChoice | None, typer.Option(help="How scenes are reduced to n points.")] = None,
    absolute_coords: Annotated[
        bool, typer.Option("--absolute-coords", help="Paper ablation: absolute coordinates in the LFA input.")
    ] = False,
    resume: ResumeOption = False,
    overwrite: OverwriteRunOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Pretrain a teacher network by reconstructing local receptive fields."""
    from st3d_edge.console import set_verbose
    from st3d_edge.teachers import shipped_provenance

    set_verbose(verbose)
    with user_errors():
        check_positive(epochs=epochs, scenes=scenes, val_scenes=val_scenes, n=n, d=d)
        if modelnet is not None and not modelnet.is_dir():
            from st3d_edge.errors import file_error

            raise file_error(modelnet, "ModelNet10 folder not found")
        settings = resolve_preset(
            preset, seed=seed, n=n, d=d, sampler=sampler, absolute_coords=absolute_coords
        )
        if epochs is not None:
            settings.pretrain.epochs = epochs
        if scenes is not None:
            settings.pretrain.scenes_train = scenes
        if val_scenes is not None:
            settings.pretrain.scenes_val = val_scenes

        from st3d_edge.console import err, out, wrote
        from st3d_edge.train.common import torch_threads
        from st3d_edge.train.distributed import process_group
        from st3d_edge.train.pretrain import DIAGNOSTICS, SCALE, TEACHER, pretrain

        run_dir = workdir / name
        if resume:
            from st3d_edge.train.runfolder import check_resume

            given = {
                **model_options_given(preset, n, d, sampler, absolute_coords),
                "pretrain.seed": seed,
                "pretrain.epochs": epochs,
                "pretrain.scenes_train": scenes,
                "pretrain.scenes_val": val_scenes,
                "job.modelnet": str(modelnet) if modelnet else None,
            }
            check_resume(run_dir, given)
        with process_group(device.value) as env:
            threads = torch_threads(env.world)
            if env.is_main:
                err.print(
                    f"pretraining in {run_dir} on {env.device} "
                    f"({env.world} process(es), {threads} thread(s) each)",
                    highlight=False,
                )
            result = pretrain(
                run_dir, settings, modelnet=modelnet, env=env, resume=resume, overwrite=overwrite
            )
        if env.is_main:
            for file in ("config.json", TEACHER, "last.pt", "metrics.jsonl", SCALE, DIAGNOSTICS):
                wrote(run_dir / file)
            shipped_rank = shipped_provenance().get("effective_rank")
            reference = f"; the shipped cpu teacher's: {shipped_rank:.1f}" if shipped_rank else ""
            out.print(
                f"teacher: best validation loss {result.best_val:.6g} at epoch {result.best_epoch}; "
                f"s = {result.s:.6g}; effective rank of its features {result.effective_rank:.2f} of "
                f"{settings.model.d} on the validation scenes (near 1: the descriptors collapsed"
                f"{reference}); run folder {run_dir}",
                highlight=False,
            )


def register(app: typer.Typer) -> None:
    app.command("pretrain")(pretrain_command)
