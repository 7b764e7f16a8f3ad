from __future__ import annotations

from typer.testing import CliRunner

from st3d_edge import __version__
from st3d_edge.cli import app


def test_version_is_eager():
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.output.strip() == f"st3d-edge {__version__}"


def test_unknown_command_is_usage_error():
    res = CliRunner().invoke(app, ["no-such-command"])
    assert res.exit_code == 2
