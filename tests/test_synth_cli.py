"""`st3d-edge synth` in-process: exit codes, files written, error lines."""

from __future__ import annotations

from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.data import synthetic


def test_synth_writes_the_requested_categories(tmp_path):
    out = tmp_path / "data"
    args = ["synth", "--out", str(out), "--categories", "dowel", "--categories", "foam"]
    args += ["--train", "2", "--validation", "1", "--test", "1", "--test-defect", "1"]
    args += ["--defects", "hole", "--defects", "dent", "--size", "24", "32", "--seed", "5"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["dowel", "foam"]
    assert len(list((out / "dowel" / "train" / "good" / "xyz").glob("*.tiff"))) == 2
    assert sorted(p.name for p in (out / "foam" / "test").iterdir()) == ["dent", "good", "hole"]
    assert (out / "foam" / "test" / "hole" / "gt" / "000.png").is_file()
    assert str(out / "dowel") in res.output and "2 train, 1 validation, 1 good + 2 defective" in res.output


def test_unknown_category_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(app, ["synth", "--out", str(tmp_path), "--categories", "gearbox"])
    assert res.exit_code == 2
    assert "gearbox" in res.output
    assert list(tmp_path.iterdir()) == []


def test_too_small_images_are_one_error_line(tmp_path):
    res = CliRunner().invoke(app, ["synth", "--out", str(tmp_path), "--size", "8", "8"])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "too small" in lines[0]


def test_cli_defaults_are_the_documented_counts():
    import typer

    params = {p.name: p.default for p in typer.main.get_command(app).commands["synth"].params}
    counts = synthetic.DEFAULT_COUNTS
    assert params["train"] == counts["train"]
    assert params["validation"] == counts["validation"]
    assert params["test"] == counts["test_good"]
    assert params["test_defect"] == counts["test_defect"]
    assert tuple(params["size"]) == synthetic.DEFAULT_SIZE
