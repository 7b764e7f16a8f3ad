"""Pieces every command shares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import typer

from st3d_edge.errors import St3dError


def print_error(message: Any, console: Any = None) -> None:
    """Print ``error: <message>`` in red on stderr (or on ``console``, e.g. a progress bar's).

    The message is escaped: it often holds things like ``st3d-edge[gpu]`` or file names with
    brackets, which rich would otherwise read as markup and drop.
    """
    from rich.markup import escape

    if console is None:
        from st3d_edge.console import err as console

    console.print(f"[red]error:[/red] {escape(str(message))}", markup=True, highlight=False)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`St3dError` into one red line on stderr and exit code 2 (no traceback)."""
    try:
        yield
    except St3dError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
