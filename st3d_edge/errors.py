"""User-facing errors.

Every problem a user can cause (a missing file, a corrupt TIFF, a bundle built on
another GPU) is raised as :class:`St3dError` with a one-line message that names the
file and the problem. The CLI prints that line and exits with code 2; it never shows
a traceback for these.
"""

from __future__ import annotations

import platform
from pathlib import Path


class St3dError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class MissingExtraError(St3dError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str, why: str = "") -> None:
        what = f" ({why})" if why else ""
        super().__init__(
            f"{module} is not installed{what}: install it with `pip install 'st3d-edge[{extra}]'`"
        )
        self.module = module
        self.extra = extra


def gpu_extra() -> str:
    """The extra that carries the GPU path here: ``jetson`` on aarch64 (JetPack), ``gpu`` elsewhere."""
    return "jetson" if platform.machine().lower() in ("aarch64", "arm64") else "gpu"


def missing_tensorrt(why: str = "") -> MissingExtraError:
    """TensorRT is missing: on a Jetson it comes with JetPack, not from the package index."""
    error = MissingExtraError("tensorrt", gpu_extra(), why)
    if gpu_extra() == "jetson":
        what = f" ({why})" if why else ""
        error.args = (
            f"tensorrt is not installed{what}: on a Jetson it comes with JetPack (apt package "
            "python3-libnvinfer); create the virtual environment with --system-site-packages to see it",
        )
    return error


def file_error(path: str | Path, problem: str) -> St3dError:
    """An error that names the file first, as every input error does."""
    return St3dError(f"{path}: {problem}")
