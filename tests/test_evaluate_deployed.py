"""`st3d-edge evaluate --model BUNDLE`: the deployed graphs through the runtime pipeline, beside PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.evaluation.pro import LIMITS
from tests.test_edge_imports import BLOCK_TORCH

ROOT = Path(__file__).resolve().parents[1]
# The FP32 graph's scores agree with PyTorch's to 1e-4 (relative, the export's parity bound);
# AU-PRO and AUROC are rank statistics of those scores, so only near-ties can move them.
FP32_METRIC_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny trained tire model (1 epoch, random teacher), its FP16 bundle and a small test split."""
    import torch

    from st3d_edge.export.bundle_writer import write_bundle
    from st3d_edge.train.student import train_category
    from tests.train_data import CATEGORY, tiny_preset, write_tiny_dataset

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("deployed")
    data = write_tiny_dataset(root / "data")
    preset = tiny_preset(epochs=1)
    preset.student.random_teacher = True
    run_dir = root / "runs" / CATEGORY
    train_category(run_dir, preset, data_root=data, category=CATEGORY, progress=False)
    report = write_bundle(run_dir, run_dir / "bundle", precision="fp16")
    return data, root / "runs", report


def test_fp32_graph_matches_pytorch_through_the_same_pipeline(tiny, tmp_path):
    data, runs, _ = tiny
    res = CliRunner().invoke(
        app,
        ["evaluate", "--data", str(data), "--model", str(runs / "tire" / "bundle"), "--with-torch",
         "--workdir", str(runs), "--out", str(tmp_path)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = {}
    for stem in ("pytorch-fp32-cpu", "onnx-fp32-onnxruntime-cpu", "onnx-fp16-onnxruntime-cpu"):
        report = json.loads((tmp_path / f"{stem}.json").read_text())
        rows[stem] = report["categories"][0] if "categories" in report else report
    torch_row, fp32_row = rows["pytorch-fp32-cpu"], rows["onnx-fp32-onnxruntime-cpu"]
    for lim in LIMITS:
        key = next(k for k in torch_row["au_pro"] if float(k) == lim)
        assert abs(fp32_row["au_pro"][key] - torch_row["au_pro"][key]) <= FP32_METRIC_TOLERANCE, lim
    assert abs(fp32_row["i_auroc"] - torch_row["i_auroc"]) <= FP32_METRIC_TOLERANCE
    assert torch_row["scans"] == 2 and torch_row["defective"] == 1
    for label in ("pytorch fp32 (cpu)", "onnx fp32 (onnxruntime-cpu)", "onnx fp16 (onnxruntime-cpu)"):
        assert label in res.stdout
    assert "d@0.3" in res.stdout and "+0.0000" in res.stdout  # the first row against itself


def test_deployed_maps_are_the_maps_infer_writes(tiny):
    from st3d_edge.data.mvtec import read_scan, scan_paths
    from st3d_edge.evaluation.deployed import onnx_variants, scan_outcome
    from st3d_edge.runtime.bundle import load_bundle
    from st3d_edge.runtime.pipeline import build_scorer

    data, runs, _ = tiny
    bundle = load_bundle(runs / "tire" / "bundle")
    (variant,) = onnx_variants(bundle, ["fp32"])
    from st3d_edge.runtime.pipeline import ScanScorer

    outcome = scan_outcome(ScanScorer(bundle, variant.backend))
    infer, _ = build_scorer(bundle.path, backend="onnxruntime", geometry="cpu")
    scan = read_scan(scan_paths(data, "tire", "test")[-1])
    got, want = outcome(scan), infer.score(scan)
    assert (got.anomaly_map == want.anomaly_map).all() and got.image_score == want.image_score


def test_evaluate_model_runs_with_torch_blocked(tiny, tmp_path):
    data, runs, _ = tiny
    code = f"""
from typer.testing import CliRunner
from st3d_edge.cli import app
args = ["evaluate", "--data", {str(data)!r}, "--model", {str(runs / "tire" / "bundle")!r},
        "--precision", "fp16", "--out", {str(tmp_path)!r}]
res = CliRunner().invoke(app, args)
assert res.exit_code == 0, res.output
assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
print(res.stdout)
"""
    res = subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr + res.stdout
    assert "onnx fp16 (onnxruntime-cpu)" in res.stdout and "onnx fp32" not in res.stdout


def test_engine_row_needs_an_engine_and_the_category_must_match(tiny):
    data, runs, _ = tiny
    args = ["evaluate", "--data", str(data), "--model", str(runs / "tire" / "bundle")]
    res = CliRunner().invoke(app, [*args, "--backend", "tensorrt"])
    assert res.exit_code == 2
    assert "has no TensorRT engine" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, [*args, "--category", "foam"])
    assert res.exit_code == 2 and "is a bundle of tire; --category foam differs" in res.output


def test_fp16_export_reports_its_change_on_the_validation_scans(tiny):
    _, _, report = tiny
    change = report.fp16_validation
    assert change is not None, report.fp16_validation_skipped
    assert change["split"] == "validation" and change["scans"] == 2
    assert 0 < change["max_image_score_change"] < 5e-2  # FP16 really ran, and stayed close
    assert set(change["pixels_over_threshold"]) == {"fp32", "fp16"}


def test_fp16_validation_is_skipped_when_the_data_is_gone(tiny, tmp_path):
    import json
    import shutil

    from st3d_edge.export.bundle_writer import fp16_validation
    from st3d_edge.runtime.bundle import load_bundle

    _, runs, _ = tiny
    run_dir = Path(shutil.copytree(runs / "tire", tmp_path / "tire"))
    config = json.loads((run_dir / "config.json").read_text())
    config["job"]["data"] = str(tmp_path / "gone")
    (run_dir / "config.json").write_text(json.dumps(config))
    change, why = fp16_validation(load_bundle(run_dir / "bundle"), run_dir)
    assert change is None and "validation scans are not at" in why
