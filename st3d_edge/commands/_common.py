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
        from rich.markup import escape

        from st3d_edge.console import err

        # escape: messages contain things like `st3d-edge[gpu]` that rich would read as markup
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
