"""`st3d-edge bench` in-process on a toy bundle (the trained-model baseline is covered by the demo)."""

from __future__ import annotations

import csv
import json

from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.commands.bench import format_table
from tests.runtime_fixtures import organized_cloud
from tests.test_infer_cli import make_bundle, write_scan


def test_bench_prints_stages_throughput_and_memory_and_writes_json_csv(tmp_path):
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
    report = json.loads((tmp_path / "bench" / "bench.json").read_text())  # default: beside the bundle
    assert report["facts"]["machine"] and "l4t" in report["facts"] and "power_mode" in report["facts"]
    assert report["backend"] == "onnxruntime-cpu" and report["precision"] == "fp32"
    rows = list(csv.DictReader((tmp_path / "bench" / "bench.csv").open()))
    assert [r["stage"] for r in rows][-1] == "total" and {r["backend"] for r in rows} == {"onnxruntime-cpu"}
    assert rows[0]["n"] == str(report["n"]) and float(rows[-1]["median_ms"]) > 0


def test_bench_rejects_bad_counts(tmp_path):
    bundle = make_bundle(tmp_path / "bundle")
    res = CliRunner().invoke(app, ["bench", "--model", str(bundle), "--repeats", "0"])
    assert res.exit_code == 2 and "--repeats" in res.output


def test_table_ratio_is_baseline_over_edge():
    edge = {"inference": {"median": 2.0, "p90": 3.0}, "total": {"median": 4.0, "p90": 5.0}}
    torch = {"inference": {"median": 6.0, "p90": 7.0}, "total": {"median": 8.0, "p90": 9.0}}
    lines = format_table(edge, "ort", torch, "torch").splitlines()
    assert lines[1].split()[-1] == "3.00" and lines[2].split()[-1] == "2.00"


def test_device_facts_of_a_jetson_tree(tmp_path):
    from st3d_edge.runtime.device_facts import device_facts

    files = {
        "proc/device-tree/model": "NVIDIA Jetson AGX Orin Developer Kit\x00",
        "etc/nv_tegra_release": "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic",
        "var/lib/dpkg/status": "Package: foo\nVersion: 1\n\nPackage: nvidia-jetpack\nVersion: 6.1+b123\n",
        "var/lib/nvpmodel/status": "pmode:0003 fmode:quiet",
        "sys/class/devfreq/17000000.ga10b/cur_freq": "1300500000",
        "sys/class/devfreq/17000000.ga10b/min_freq": "1300500000",
        "sys/class/devfreq/17000000.ga10b/max_freq": "1300500000",
        "usr/local/cuda/version.json": '{"cuda": {"name": "CUDA SDK", "version": "12.6.68"}}',
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    facts = device_facts(tmp_path)
    assert facts["device"] == "NVIDIA Jetson AGX Orin Developer Kit"
    assert (facts["l4t"], facts["jetpack"], facts["power_mode"]) == ("36.4.0", "6.1+b123", "3")
    assert facts["cuda"] == "12.6.68"
    assert facts["gpu_freq_hz"] == 1300500000 and facts["jetson_clocks"] is True
    assert facts["emc_freq_hz"] is None  # root-only debug file: absent, not guessed
    (tmp_path / "sys/class/devfreq/17000000.ga10b/min_freq").write_text("306000000")
    assert device_facts(tmp_path)["jetson_clocks"] is False
    empty = device_facts(tmp_path / "nothing")
    assert empty["l4t"] is None and empty["jetson_clocks"] is None and empty["gpu_freq_hz"] is None
