"""The ``st3d-edge`` command line: a thin typer app; each command lives in ``st3d_edge.commands``.

Exit codes: 0 success, 1 some inputs of a batch failed, 2 bad usage or unusable input.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup, TyperOption

from st3d_edge import __version__
from st3d_edge.errors import St3dError

# One module per command; each defines ``register(app)``. Heavy imports (torch, onnx)
# happen inside the commands so that `st3d-edge --help` and the edge commands stay light.
COMMAND_MODULES = (
    "synth",
    "pretrain",
    "train",
    "evaluate",
    "export",
    "engine",
    "infer",
    "calibrate",
    "bench",
    "demo",
    "keygen",
)


def _plain_flag(param: Any) -> Any:
    """A boolean flag without typer's ``<bool>`` type label, and with its default shown."""
    if isinstance(param, TyperOption) and param.is_flag and not param.count:
        param.metavar = ""
        if not param.is_eager and not param.secondary_opts and param.default is False:
            param.show_default = "off"
    return param


class _Group(TyperGroup):
    """The app's group: plain boolean flags in every command's ``--help`` (see ``_plain_flag``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return [_plain_flag(p) for p in super().get_params(ctx)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None and not getattr(command, "_plain_flags", False):
            params = command.get_params
            command.get_params = lambda ctx: [_plain_flag(p) for p in params(ctx)]  # type: ignore[method-assign]
            command._plain_flags = True  # type: ignore[attr-defined]
        return command


app = typer.Typer(
    cls=_Group,
    name="st3d-edge",
    help="3D Student-Teacher anomaly detection for 3D scans: train on good parts, find defects on the edge.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"st3d-edge {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """3D Student-Teacher anomaly detection for 3D scans."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"st3d_edge.commands.{_name}").register(app)


def main() -> None:
    """Console entry point.

    typer's standalone mode turns usage errors into exit code 2 and ``typer.Exit`` into its
    code; a :class:`St3dError` that escapes a command still becomes one line and exit code 2.
    """
    try:
        app()
    except St3dError as exc:
        from rich.markup import escape

        from st3d_edge.console import err

        err.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
