"""`st3d-edge demo --preset tiny`: the whole job end to end, in-process, on tiny synthetic scans."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from st3d_edge.cli import app

pytest.importorskip("torch", reason="the demo trains a model: the train extra is needed")


def test_demo_end_to_end(tmp_path):
    work = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--workdir", str(work), "--preset", "tiny"])
    assert res.exit_code == 0, res.output
    for step in range(1, 7):
        assert f"step {step}/6" in res.output
    assert (work / "data" / "tire" / "train" / "good" / "xyz" / "000.tiff").is_file()
    assert (work / "runs" / "teacher" / "teacher.pt").is_file()
    assert (work / "runs" / "tire" / "student.pt").is_file()
    assert (work / "runs" / "tire" / "bundle" / "manifest.json").is_file()
    records = [json.loads(line) for line in (work / "infer" / "results.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["verdict"] in ("good", "anomalous")
    assert "/test/" in records[0]["file"] and "/good/" not in records[0]["file"]
    assert "demo finished" in res.output


def test_demo_unknown_category_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--workdir", str(tmp_path), "--category", "teapot"])
    assert res.exit_code == 2 and "unknown category 'teapot'" in res.output
