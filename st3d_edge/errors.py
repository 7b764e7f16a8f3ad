"""User-facing errors.

Every problem a user can cause (a missing file, a corrupt TIFF, a bundle built on
another GPU) is raised as :class:`St3dError` with a one-line message that names the
file and the problem. The CLI prints that line and exits with code 2; it never shows
a traceback for these.
"""

from __future__ import annotations

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


def file_error(path: str | Path, problem: str) -> St3dError:
    """An error that names the file first, as every input error does."""
    return St3dError(f"{path}: {problem}")
