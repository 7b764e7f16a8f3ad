"""Pieces every command shares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from st3d_edge.errors import St3dError


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`St3dError` into one red line on stderr and exit code 2 (no traceback)."""
    try:
        yield
    except St3dError as exc:
        from st3d_edge.console import err

        err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        raise typer.Exit(2) from None
