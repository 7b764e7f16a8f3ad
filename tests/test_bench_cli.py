"""`st3d-edge bench` in-process on a toy bundle (the trained-model baseline is covered by the demo)."""

from __future__ import annotations

from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.commands.bench import format_table
from tests.runtime_fixtures import organized_cloud
from tests.test_infer_cli import make_bundle, write_scan


def test_bench_prints_stages_throughput_and_memory(tmp_path):
    bundle = make_bundle(tmp_path / "bundle")
    scan = write_scan(tmp_path / "scan.tiff", organized_cloud(16, 18, seed=4))
    args = [
        "bench",
        "--model",
        bundle,
        "--scan",
        scan,
        "--repeats",
        "3",
        "--warmup",
        "1",
        "--geometry",
        "cpu",
    ]
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    for stage in ("read", "sample", "knn", "inference", "fill", "image_score", "total"):
        assert f"\n{stage} " in res.output
    assert "scans/s:" in res.output and "onnxruntime-cpu on CPU" in res.output
    assert "peak host RSS:" in res.output
    assert "no PyTorch baseline" in res.output  # the toy bundle has no training run beside it


def test_bench_rejects_bad_counts(tmp_path):
    bundle = make_bundle(tmp_path / "bundle")
    res = CliRunner().invoke(app, ["bench", "--model", str(bundle), "--repeats", "0"])
    assert res.exit_code == 2 and "--repeats" in res.output


def test_table_ratio_is_baseline_over_edge():
    edge = {"inference": {"median": 2.0, "p90": 3.0}, "total": {"median": 4.0, "p90": 5.0}}
    torch = {"inference": {"median": 6.0, "p90": 7.0}, "total": {"median": 8.0, "p90": 9.0}}
    lines = format_table(edge, "ort", torch, "torch").splitlines()
    assert lines[1].split()[-1] == "3.00" and lines[2].split()[-1] == "2.00"
