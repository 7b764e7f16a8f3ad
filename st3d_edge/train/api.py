"""The workstation side's Python API: ``train_detector(...)``, what ``st3d-edge train`` calls.

```python
import st3d_edge
result = st3d_edge.train_detector(good="scans/good", category="bracket", preset="cpu")
result.run_dir, result.thresholds            # then export the run folder with `st3d-edge export`
```

The scans come either from the MVTec 3D-AD layout (``data`` and ``category``: the good scans of
``train`` and ``validation``) or from a flat folder, list or glob of good scans in any format of
:mod:`st3d_edge.data.readers` (``good``), with the validation scans given (``validation``) or
drawn from ``good`` by a seeded split (``val_fraction``, seed = the preset's student seed, see
:mod:`st3d_edge.data.scanlist`). The run's ``config.json`` records where the scans came from and
which ones were held out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from st3d_edge.errors import St3dError, file_error

Sources = str | Path | Sequence[str | Path]
DEFAULT_VAL_FRACTION = 0.1


def _patterns(value: Sources) -> list[str]:
    return [str(value)] if isinstance(value, str | Path) else [str(v) for v in value]


def default_category(good: Sources) -> str:
    """A run name for a flat folder of good scans: the folder's name (``scans/good`` -> ``scans``)."""
    first = Path(_patterns(good)[0])
    folder = first if first.is_dir() else first.parent
    if folder.name == "good" and folder.parent.name:
        folder = folder.parent
    return folder.resolve().name or "scans"


def flat_scans(
    good: Sources, validation: Sources | None, val_fraction: float, seed: int
) -> tuple[list[Path], list[Path], dict[str, Any]]:
    """(training scans, validation scans, how they were chosen) from user-given paths or globs."""
    from st3d_edge.data.scanlist import expand_scan_paths, split_validation

    good_paths = expand_scan_paths(_patterns(good))
    if validation is not None:
        val_paths = expand_scan_paths(_patterns(validation))
        both = {p.resolve() for p in good_paths} & {p.resolve() for p in val_paths}
        if both:
            raise file_error(sorted(both)[0], "is among both the training and the validation scans")
        split = {"validation": _patterns(validation)}
        return good_paths, val_paths, {"good": _patterns(good), **split}
    train_paths, val_paths = split_validation(good_paths, val_fraction, seed)
    split = {
        "val_fraction": val_fraction,
        "split_seed": seed,
        "validation_scans": [str(p.resolve()) for p in val_paths],
    }
    return train_paths, val_paths, {"good": _patterns(good), **split}


def resolve_teacher(teacher: str | Path | None, workdir: Path, settings) -> Path:
    """The teacher folder a run uses: the one given, the workdir's own, or the shipped one.

    Without any, the workdir's (missing) one: training then says how to get a teacher, after
    it has checked the data.
    """
    from st3d_edge.teachers import shipped_teacher

    if teacher is not None:
        return Path(teacher)
    own = Path(workdir) / "teacher"
    if (own / "teacher.pt").is_file():
        return own
    return shipped_teacher(settings) or own


def train_detector(
    *,
    category: str | None = None,
    data: str | Path | None = None,
    good: Sources | None = None,
    validation: Sources | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    units: str = "m",
    intrinsics: str | Path | None = None,
    workdir: str | Path = "st3d-runs",
    name: str | None = None,
    teacher: str | Path | None = None,
    preset: str | None = None,
    random_teacher: bool = False,
    absolute_coords: bool = False,
    device: str = "auto",
    seed: int | None = None,
    epochs: int | None = None,
    n: int | None = None,
    d: int | None = None,
    sampler: str | None = None,
    pixel_fpr: float = 0.01,
    scoring: str = "fused",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Any:
    """Train the student of one category; returns ``st3d_edge.train.student.StudentResult``.

    The options are those of ``st3d-edge train`` (same names, same defaults).
    """
    from st3d_edge.console import err
    from st3d_edge.data.readers import ReadOptions, units_factor
    from st3d_edge.train.common import torch_threads
    from st3d_edge.train.distributed import process_group
    from st3d_edge.train.options import PresetName, SamplerChoice, resolve_preset
    from st3d_edge.train.student import train_category

    units_factor(units)
    if not 0.0 <= pixel_fpr < 1.0:
        raise St3dError(f"the pixel false-positive rate must be in [0, 1), got {pixel_fpr}")
    if (good is None) == (data is None):
        raise St3dError("give the scans either as --data DIR --category NAME (MVTec layout) or as --good DIR")
    if data is not None:
        if category is None:
            raise St3dError("--data needs --category NAME (the category folder inside it)")
        if not (Path(data) / category).is_dir():
            raise file_error(Path(data) / category, "category folder not found")
    settings = resolve_preset(
        PresetName(preset) if preset else None,
        seed=seed,
        n=n,
        d=d,
        sampler=SamplerChoice(sampler) if sampler else None,
        absolute_coords=absolute_coords,
    )
    settings.student.random_teacher = random_teacher
    settings.model.scoring = scoring
    if epochs is not None:
        settings.student.epochs = epochs
        settings.student.steps = 0  # an explicit epoch count replaces the preset's step budget
    train_paths = val_paths = source = None
    if good is not None:
        category = category or default_category(good)
        train_paths, val_paths, source = flat_scans(good, validation, val_fraction, settings.student.seed)
    workdir = Path(workdir)
    teacher_dir = None if random_teacher else resolve_teacher(teacher, workdir, settings)
    run_dir = workdir / (name or category)
    if resume:
        from st3d_edge.train.options import model_options_given
        from st3d_edge.train.runfolder import check_resume

        given = {
            **model_options_given(
                PresetName(preset) if preset else None,
                n,
                d,
                SamplerChoice(sampler) if sampler else None,
                absolute_coords,
            ),
            "student.seed": seed,
            "student.epochs": epochs,
            "student.random_teacher": True if random_teacher else None,
            "job.data": str(Path(data).resolve()) if data is not None else None,
            "job.teacher": str(Path(teacher).resolve()) if teacher else None,
        }
        check_resume(run_dir, given)

    with process_group(device) as env:
        threads = torch_threads(env.world)
        if env.is_main and progress:
            err.print(
                f"training {category} in {run_dir} on {env.device} "
                f"({env.world} process(es), {threads} thread(s) each)",
                highlight=False,
            )
        return train_category(
            run_dir,
            settings,
            data_root=data,
            category=category,
            teacher_dir=teacher_dir,
            train_paths=train_paths,
            val_paths=val_paths,
            reading=ReadOptions(units, None if intrinsics is None else str(intrinsics)),
            source=source,
            env=env,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
            pixel_fpr=pixel_fpr,
        )
