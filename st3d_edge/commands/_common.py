"""Pieces every command shares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from st3d_edge.errors import St3dError
from st3d_edge.train.options import PresetName


class DeviceChoice(str, Enum):
    """Where a stage runs: the training device, the network of ``evaluate``, the edge geometry."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class ScoringChoice(str, Enum):
    """The anomaly score (st3d_edge.calibration.scoring): the shipped fusion, or 3D-ST alone."""

    fused = "fused"
    student = "student"


class BackendChoice(str, Enum):
    auto = "auto"
    onnxruntime = "onnxruntime"
    numba = "numba"
    tensorrt = "tensorrt"


# Options of the training commands (pretrain, train).
PresetOption = Annotated[
    PresetName | None, typer.Option(help="Settings preset: paper (default), cpu (demo), tiny (tests).")
]
RunsDirOption = Annotated[Path, typer.Option(help="Folder holding the run folders.")]
TrainDeviceOption = Annotated[DeviceChoice, typer.Option(help="Where to train.")]
# re-signs a manifest a device command changes (calibrate, engine): the device's own key
ResignOption = Annotated[
    Path | None,
    typer.Option(
        "--sign",
        help="Ed25519 private key (e.g. the device's) to sign the changed manifest (signed bundles).",
    ),
]
EpochsOption = Annotated[int | None, typer.Option(help="Override the preset's epoch count.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue the run from its last.pt.")]
OverwriteRunOption = Annotated[bool, typer.Option("--overwrite", help="Start the run folder over.")]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", help="Print each epoch's losses under the progress bar too.")
]


def points_option(help: str) -> Any:
    """``--n`` / ``--points``: the model's point count override (``help`` names what is sampled)."""
    return typer.Option("--n", "--points", help=help)


def dim_option(help: str) -> Any:
    """``--d`` / ``--dim``: the descriptor dimension override."""
    return typer.Option("--d", "--dim", help=help)


# Options of the edge commands that score with a bundle (infer, bench).
BundleOption = Annotated[Path | None, typer.Option("--model", help="Export bundle folder.")]
BundleCategoryOption = Annotated[
    str | None, typer.Option("--category", help="Use <workdir>/<category>/bundle as the model.")
]
BundleWorkdirOption = Annotated[
    Path,
    typer.Option("--workdir", help="Folder holding the run folders (<workdir>/<category>/bundle)."),
]
BackendOption = Annotated[BackendChoice, typer.Option("--backend", help="Inference engine.")]
GeometryOption = Annotated[
    DeviceChoice, typer.Option("--geometry", help="Where sampling, kNN and the fill run.")
]


class UnitsChoice(str, Enum):
    m = "m"
    mm = "mm"
    um = "um"


# Options of every command that reads scans (st3d_edge.data.readers).
UnitsOption = Annotated[
    UnitsChoice,
    typer.Option("--units", help="Units of the scans' coordinates where the format does not say."),
]
MasksOption = Annotated[
    Path | None, typer.Option(help="Masks of the defective scans: <scan name>.png or .npy.")
]
IntrinsicsOption = Annotated[
    Path | None,
    typer.Option(
        "--intrinsics",
        help="Depth images: JSON with fx, fy, cx, cy, depth_scale "
        "(default: <scan>.json or intrinsics.json beside the scan).",
    ),
]


def print_error(message: Any, console: Any = None) -> None:
    """Print ``error: <message>`` in red on stderr (or on ``console``, e.g. a progress bar's).

    The message is escaped: it often holds things like ``st3d-edge[gpu]`` or file names with
    brackets, which rich would otherwise read as markup and drop.
    """
    from rich.markup import escape

    if console is None:
        from st3d_edge.console import err as console

    console.print(f"[red]error:[/red] {escape(str(message))}", markup=True, highlight=False)


def os_error_line(exc: OSError) -> str:
    """``<file>: <reason>`` of an OS error, as every input error reads."""
    reason = exc.strerror or str(exc)
    names = [str(name) for name in (exc.filename, exc.filename2) if name is not None]
    return f"{' -> '.join(names)}: {reason}" if names else reason


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user's problem into one red line on stderr and an exit code (no traceback).

    :class:`St3dError` and any OS error (a folder where a file should be, no permission, a full
    disk) exit with 2, "bad usage or unusable input"; Ctrl-C with 130 (SIGTERM 143).
    """
    from st3d_edge.commands._signals import Interrupted

    try:
        yield
    except St3dError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    except OSError as exc:
        print_error(os_error_line(exc))
        raise typer.Exit(2) from None
    except Interrupted as exc:
        print_error(exc)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print_error("interrupted")
        raise typer.Exit(130) from None
