"""`st3d-edge export` in-process: bundle files, manifest, parity line, Triton layout, errors."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.config import ModelConfig
from st3d_edge.errors import St3dError
from st3d_edge.runtime.bundle import DeviceIdentity, load_bundle
from tests.export_reference import write_trained_category
from tests.test_export_tensorrt import _fake_tensorrt, _Recorder, onnx_engine_stand_in


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    write_trained_category(root / "tire")
    return root


def invoke(*args):
    return CliRunner().invoke(app, ["export", *map(str, args)])


def test_onnx_bundle_with_manifest_sizes_and_parity(workdir):
    res = invoke("--category", "tire", "--workdir", workdir)
    assert res.exit_code == 0, res.output
    bundle = load_bundle(workdir / "tire" / "bundle")
    names = sorted(p.name for p in bundle.path.iterdir())
    assert names == [
        "check_knn.npy", "check_points.npy", "check_scores_fp32.npy", "check_sizes.npy",
        "geometric_bank.npy", "manifest.json", "model.onnx",
    ]  # fmt: skip
    assert bundle.parity["check_clouds"] == 3
    assert bundle.scoring["method"] == "fused" and bundle.scoring["bank"] == "geometric_bank.npy"
    assert (bundle.category, bundle.n, bundle.k, bundle.d, bundle.precision) == ("tire", 256, 8, 16, "fp32")
    assert bundle.s == pytest.approx(0.004)
    assert bundle.thresholds["pixel"] == 1.5 and bundle.thresholds["image"] == 2.5
    assert bundle.sampler == ModelConfig().sampler and bundle.image_score["neighbours"] == 8
    assert bundle.engine is None and "tensorrt" not in bundle.versions
    assert bundle.versions["opset"] == "17"
    assert bundle.parity["max_relative_error"] <= 1e-4
    assert bundle.parity["numba_cpu_max_relative_error"] <= 1e-4
    assert "model.onnx" in res.stdout and "KiB" in res.stdout
    assert "parity onnxruntime vs torch: 3 clouds" in res.stdout
    assert "wrote" in res.output and "bundle" in res.output


def test_fp16_triton_layout(workdir, tmp_path):
    out = tmp_path / "fp16-bundle"
    res = invoke(
        "--category", "tire", "--workdir", workdir, "--format", "triton", "--precision", "fp16", "--out", out
    )
    assert res.exit_code == 0, res.output
    bundle = load_bundle(out)
    assert bundle.models == {"fp32": "model.onnx", "fp16": "model_fp16.onnx"}
    assert bundle.precision == "fp16" and bundle.onnx_path() == out / "model_fp16.onnx"
    assert "fp16 graph vs fp32 graph: max relative drift" in res.stdout
    config = (out / "triton" / "st3d_tire" / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in config and "max_batch_size: 0" in config
    assert 'name: "knn" data_type: TYPE_INT32 dims: [ -1, 8 ]' in config
    assert 'name: "points" data_type: TYPE_FP32 dims: [ -1, 3 ]' in config
    model = out / "triton" / "st3d_tire" / "1" / "model.onnx"
    assert model.read_bytes() == (out / "model_fp16.onnx").read_bytes()


def _export_engine_without_tensorrt(workdir, out, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    return invoke("--category", "tire", "--workdir", workdir, "--format", "engine", "--out", out)


def test_engine_without_tensorrt_is_one_line_and_writes_nothing(workdir, tmp_path, monkeypatch):
    res = _export_engine_without_tensorrt(workdir, tmp_path / "engine-bundle", monkeypatch)
    assert res.exit_code == 2
    error_lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "tensorrt is not installed" in error_lines[0]
    assert "pip install 'st3d-edge" in error_lines[0]
    assert "Traceback" not in res.output
    assert not (tmp_path / "engine-bundle").exists()


def test_engine_without_tensorrt_names_the_extra_on_the_command_line(workdir, tmp_path, monkeypatch):
    res = _export_engine_without_tensorrt(workdir, tmp_path / "engine-bundle", monkeypatch)
    assert "pip install 'st3d-edge[gpu]'" in res.output


def test_unknown_category_and_bad_profile_are_usage_errors(workdir):
    res = invoke("--category", "nothing", "--workdir", workdir)
    assert res.exit_code == 2 and "no such run folder" in res.output
    res = invoke("--category", "tire", "--workdir", workdir, "--format", "png")
    assert res.exit_code == 2
    res = invoke("--category", "tire", "--workdir", workdir, "--format", "engine", "--profile-min", "512")
    assert res.exit_code == 2


def test_engine_bundle_with_stand_in_tensorrt(workdir, tmp_path, monkeypatch):
    """Manifest and Triton plan layout of an engine bundle (the stand-in is not TensorRT)."""
    import st3d_edge.runtime.bundle as bundle_module

    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt(_Recorder()))
    monkeypatch.setattr(bundle_module, "current_gpu", lambda: ("Orin", "8.7"))
    onnx_engine_stand_in(monkeypatch)
    out = tmp_path / "all-bundle"
    res = invoke("--category", "tire", "--workdir", workdir, "--format", "all", "--out", out)
    assert res.exit_code == 0, res.output
    bundle = load_bundle(out, use_engine=True, device=DeviceIdentity("10.3.0.26", "Orin", "8.7"))
    assert bundle.engine.precision == "fp32" and bundle.versions["tensorrt"] == "10.3.0.26"
    assert (bundle.engine.profile_min, bundle.engine.profile_opt, bundle.engine.profile_max) == (
        256,
        256,
        256,
    )
    assert {"model.engine", "timing.cache"} <= set(bundle.files)
    assert bundle.parity["engine_check"]["max_relative_error"] == 0.0  # onnxruntime stood in for it
    assert "engine: TensorRT 10.3.0.26 on Orin" in res.stdout
    config = (out / "triton" / "st3d_tire" / "config.pbtxt").read_text()
    assert 'platform: "tensorrt_plan"' in config
    assert (out / "triton" / "st3d_tire" / "1" / "model.plan").read_bytes() == b"ENGINE"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["engine"]["device"] == {
        "tensorrt_version": "10.3.0.26",
        "gpu_name": "Orin",
        "compute_capability": "8.7",
    }


def test_signed_export_is_trusted_by_its_public_key_only(workdir, tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["keygen", str(tmp_path / "line")]).exit_code == 0
    assert runner.invoke(app, ["keygen", str(tmp_path / "other")]).exit_code == 0
    res = runner.invoke(app, ["keygen", str(tmp_path / "line")])
    assert res.exit_code == 2 and "already exists" in res.output
    assert (tmp_path / "line.key").stat().st_mode & 0o077 == 0  # the private key is not for others
    out = tmp_path / "signed"
    res = invoke("--category", "tire", "--workdir", workdir, "--out", out, "--sign", tmp_path / "line.key")
    assert res.exit_code == 0, res.output
    assert "signed by key" in res.stdout
    assert load_bundle(out, trust=[tmp_path / "line.pub"]).signatures
    with pytest.raises(St3dError, match="none of which this device trusts"):
        load_bundle(out, trust=[tmp_path / "other.pub"])
    res = invoke("--category", "tire", "--workdir", workdir, "--out", out, "--sign", tmp_path / "line.pub")
    assert res.exit_code == 2 and "not an unencrypted PEM private key" in res.output
