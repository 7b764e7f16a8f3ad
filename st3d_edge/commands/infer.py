"""`st3d-edge infer` (not yet written: registers nothing)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    return None
