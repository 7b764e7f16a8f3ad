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


def test_console_entry_point_exit_codes(tmp_path):
    """The installed script (not only the in-process app) exits 2 on bad input and bad usage."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "st3d_edge.cli"]
    bad_input = subprocess.run(
        cmd + ["synth", "--out", str(tmp_path), "--size", "8", "8"], capture_output=True, text=True
    )
    assert bad_input.returncode == 2
    assert bad_input.stderr.strip().startswith("error:")
    assert "Traceback" not in bad_input.stderr
    bad_usage = subprocess.run(
        cmd + ["synth", "--out", str(tmp_path), "--categories", "nope"], capture_output=True, text=True
    )
    assert bad_usage.returncode == 2
    assert "Traceback" not in bad_usage.stderr


def test_messages_keep_brackets(capsys):
    """File names and install hints with brackets reach the user intact (rich markup is opt-in)."""
    from st3d_edge.commands._common import print_error
    from st3d_edge.console import err, wrote

    err.file = None  # rich resolves sys.stderr at print time, which capsys replaced
    wrote("runs/[tire]/model.onnx", "bundle")
    print_error("install it with `pip install 'st3d-edge[gpu]'`")
    text = capsys.readouterr().err
    assert "wrote bundle: runs/[tire]/model.onnx" in text
    assert "error: install it with `pip install 'st3d-edge[gpu]'`" in text
