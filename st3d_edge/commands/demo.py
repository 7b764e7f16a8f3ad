"""`st3d-edge demo`: the whole job on a fresh machine, on built-in synthetic data.

Steps, each printed with where its output went:

1. synthesize a small dataset of one category in the MVTec 3D-AD layout (``<workdir>/data``)
2. use the teacher shipped with the package for the preset, or pretrain a small one on
   synthetic scenes when none ships (``st3d-edge pretrain``)
3. train the student for the category (``st3d-edge train``)
4. evaluate it on the test split (``st3d-edge evaluate``)
5. export the bundle (``st3d-edge export``, ONNX)
6. score one defective test scan with the edge runtime (``st3d-edge infer``)

Steps 2-5 run the other commands in-process with the same options a user would type, so the
demo is also a walk-through of the CLI. Dataset sizes per preset (:data:`DEMO_DATA`): ``cpu``
(the default) uses 256 x 256 scans, 20 train, 5 validation, 5 good and 1 per defect type in
test, and finishes in well under 15 minutes on 2 CPU cores; ``tiny`` (48 x 48, a handful of
scans) exists for the test suite and finishes in seconds, with meaningless accuracy.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from st3d_edge.commands._common import user_errors

DEFAULT_WORKDIR = Path("st3d-demo")

DEMO_DATA = {
    "cpu": dict(size=256, train=20, validation=5, test_good=5, test_defect=1),
    "tiny": dict(size=48, train=3, validation=2, test_good=1, test_defect=1),
}


class DemoPreset(str, Enum):
    cpu = "cpu"
    tiny = "tiny"


def run_command(args: list[str]) -> None:
    """Run ``st3d-edge ARGS`` in this process; a non-zero exit becomes a one-line error."""
    from rich.markup import escape

    from st3d_edge.cli import app
    from st3d_edge.console import err
    from st3d_edge.errors import St3dError

    err.print(f"[bold]$ st3d-edge {escape(' '.join(args))}[/bold]", markup=True, highlight=False)
    try:
        code = app(args, standalone_mode=False, prog_name="st3d-edge")
    except Exception as exc:
        # Usage errors: typer may vendor its own click, so match the interface, not the class.
        if not hasattr(exc, "format_message"):
            raise
        raise St3dError(f"demo step `st3d-edge {args[0]}`: {exc.format_message()}") from None
    if code not in (None, 0):
        raise St3dError(f"demo step `st3d-edge {args[0]}` failed (exit code {code}); see the lines above")


def step(number: int, title: str) -> None:
    from rich.text import Text

    from st3d_edge.console import err

    err.rule(Text(f"step {number}/6: {title}", style="bold"), style="cyan")


def run_demo(workdir: Path, preset: str = "cpu", category: str = "tire", seed: int = 0) -> dict:
    """The command's body; returns where each step's output went."""
    import time

    from st3d_edge.commands.infer import run_infer
    from st3d_edge.console import err, out, wrote
    from st3d_edge.data import synthetic
    from st3d_edge.errors import St3dError

    if category not in synthetic.CATEGORIES:
        raise St3dError(f"unknown category {category!r}; choose one of: {', '.join(synthetic.CATEGORIES)}")
    settings = dict(DEMO_DATA[preset])
    size = settings.pop("size")
    data = workdir / "data"
    runs = workdir / "runs"
    started = time.perf_counter()
    where: dict[str, Path] = {}

    step(1, f"synthesize {category} scans ({size} x {size})")
    synthetic.write_dataset(data, categories=[category], size=(size, size), seed=seed, **settings)
    where["data"] = data / category
    wrote(where["data"], "synthetic dataset")

    from st3d_edge.config import get_preset
    from st3d_edge.teachers import shipped_teacher

    shipped = shipped_teacher(get_preset(preset))
    if shipped is not None:
        step(2, "use the pretrained teacher shipped with the package")
        where["teacher"] = shipped
        err.print(f"teacher: {shipped}", highlight=False)
    else:
        step(2, "pretrain the teacher on synthetic scenes")
        # --overwrite: the demo starts its run folders over each time it is run.
        run_command(
            ["pretrain", "--preset", preset, "--workdir", str(runs), "--seed", str(seed), "--overwrite"]
        )
        where["teacher"] = runs / "teacher"

    step(3, f"train the student for {category}")
    run_command(
        ["train", "--data", str(data), "--category", category, "--preset", preset, "--workdir", str(runs)]
        + ["--teacher", str(where["teacher"]), "--seed", str(seed), "--overwrite"]
    )
    where["student"] = runs / category

    step(4, "evaluate on the test split")
    run_command(["evaluate", "--data", str(data), "--category", category, "--workdir", str(runs)])
    where["evaluation"] = runs / "evaluation"

    step(5, "export the bundle")
    run_command(["export", "--category", category, "--workdir", str(runs), "--format", "onnx"])
    where["bundle"] = runs / category / "bundle"

    step(6, "score a defective test scan on the edge runtime")
    scans = sorted((data / category / "test").glob("*/xyz/*.tiff"))
    defective = [p for p in scans if p.parent.parent.name != "good"] or scans
    where["infer"] = workdir / "infer"
    failed = run_infer(
        [str(defective[0])], category=category, workdir=runs, out=where["infer"], overwrite=True
    )
    if failed:
        raise St3dError(f"{defective[0]}: the edge runtime could not score the demo scan")

    from rich.text import Text

    minutes = (time.perf_counter() - started) / 60
    err.rule(Text("done", style="bold"), style="green")
    for what, path in where.items():
        out.print(f"{what:<11} {path}", highlight=False)
    out.print(f"demo finished in {minutes:.1f} min", highlight=False)
    return where


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        workdir: Annotated[Path, typer.Option("--workdir", help="Folder for data, runs and results.")] = (
            DEFAULT_WORKDIR
        ),
        preset: Annotated[DemoPreset, typer.Option("--preset", help="Model and data size.")] = DemoPreset.cpu,
        category: Annotated[str, typer.Option("--category", help="Synthetic category.")] = "tire",
        seed: Annotated[int, typer.Option("--seed", help="Seed for data and training.")] = 0,
    ) -> None:
        """Synthesize data, train on the shipped teacher, evaluate, export and infer: the whole job."""
        with user_errors():
            run_demo(workdir, preset.value, category, seed)
