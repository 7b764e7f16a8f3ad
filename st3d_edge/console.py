"""Where output goes: results on stdout, progress and errors on stderr (rich)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# Markup is off by default: messages carry file names and install hints with brackets
# (`st3d-edge[gpu]`) that rich would otherwise swallow. Styled lines opt in and escape.
out = Console(soft_wrap=True, markup=False)
err = Console(stderr=True, soft_wrap=True, markup=False)

T = TypeVar("T")

_verbose = False


def set_verbose(on: bool) -> None:
    global _verbose
    _verbose = bool(on)


def detail_lines() -> bool:
    """Whether to print lines a progress bar already shows (per-epoch losses): with ``--verbose``,
    or when stderr is not a terminal, since a log file keeps no bar."""
    return _verbose or not err.is_terminal


def progress_bar() -> Progress:
    """A progress bar on stderr with count, elapsed time, ETA and a free-text status field."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=err,
        transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar on stderr."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar() as bar:
        task = bar.add_task(description, total=total, status="")
        for item in items:
            yield item
            bar.advance(task)


def wrote(path: object, what: str = "") -> None:
    """Tell the user where a file went (every command that writes files does)."""
    from rich.markup import escape

    label = f"{what}: " if what else ""
    err.print(f"[green]wrote[/green] {escape(f'{label}{path}')}", markup=True, highlight=False)
