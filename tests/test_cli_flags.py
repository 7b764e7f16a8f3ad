"""Boolean flags in --help: no `<bool>` label, their default shown."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from st3d_edge.cli import COMMAND_MODULES, app


@pytest.mark.parametrize("command", COMMAND_MODULES)
def test_flags_are_plain_and_show_their_default(command):
    res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "<bool>" not in res.output


def test_an_off_flag_says_so():
    res = CliRunner().invoke(app, ["infer", "--help"], env={"COLUMNS": "200"})
    line = next(line for line in res.output.splitlines() if "--ply" in line)
    assert "[default: (off)]" in line
    top = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "<bool>" not in top.output and "--version" in top.output


def test_epoch_lines_only_when_verbose_or_not_a_terminal(monkeypatch):
    import io

    from rich.console import Console

    from st3d_edge import console

    monkeypatch.setattr(console, "err", Console(file=io.StringIO(), force_terminal=True))
    console.set_verbose(False)
    assert not console.detail_lines()
    console.set_verbose(True)
    assert console.detail_lines()
    console.set_verbose(False)
    monkeypatch.setattr(console, "err", Console(file=io.StringIO(), force_terminal=False))
    assert console.detail_lines()
