"""`st3d-edge engine BUNDLE`: the device-side engine build, its check clouds and the manifest it rewrites.

TensorRT is the stand-in module of ``test_export_tensorrt`` (it records calls and returns fixed
bytes); the engine's scores in the check come from onnxruntime running an ONNX graph in its
place: the bundle's own graph (the check passes with zero error) or one with perturbed weights
(the check must refuse it). Neither is TensorRT; they test everything around it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.errors import St3dError
from st3d_edge.runtime.bundle import DeviceIdentity, load_bundle
from st3d_edge.runtime.check_clouds import ENGINE_DRIFT_LIMITS, compare, read_check_clouds
from tests.test_edge_imports import BLOCK_TORCH
from tests.test_export_tensorrt import _fake_tensorrt, _Recorder

ROOT = Path(__file__).resolve().parents[1]
DEVICE = DeviceIdentity("10.3.0.26", "Orin", "8.7")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An FP16 bundle (both graphs) of a tiny category with random weights."""
    from st3d_edge.export.bundle_writer import write_bundle
    from tests.export_reference import write_trained_category

    root = tmp_path_factory.mktemp("engine")
    run_dir = write_trained_category(root / "tire")
    return write_bundle(run_dir, root / "bundle", precision="fp16").bundle.path


@pytest.fixture()
def bundle_dir(exported, tmp_path):
    import shutil

    return Path(shutil.copytree(exported, tmp_path / "bundle"))


def perturbed_graph(source: Path, target: Path, scale: float = 0.2) -> Path:
    """``source`` with every float weight w replaced by w * (1 + scale * N(0, 1)): another model."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    rng = np.random.default_rng(0)
    for tensor in model.graph.initializer:
        if tensor.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
            weights = numpy_helper.to_array(tensor)
            noisy = weights * (1 + scale * rng.standard_normal(weights.shape))
            tensor.CopyFrom(numpy_helper.from_array(noisy.astype(weights.dtype), tensor.name))
    onnx.save(model, str(target))
    return target


def stand_ins(monkeypatch, graph: Path | None = None, log: _Recorder | None = None) -> None:
    """Stand-in TensorRT and GPU; the engine's scores come from onnxruntime on ``graph``
    (default: the graph the engine was built from, beside it in the bundle)."""
    import st3d_edge.runtime.bundle as bundle_module
    import st3d_edge.runtime.engine_build as engine_build
    from st3d_edge.runtime.backends import OnnxRuntimeBackend

    built_from = {}
    trt = _fake_tensorrt(log or _Recorder())
    parse = trt.OnnxParser.parse_from_file

    def remember(self, path):
        built_from["graph"] = Path(path)
        return parse(self, path)

    trt.OnnxParser.parse_from_file = remember
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(bundle_module, "current_gpu", lambda: (DEVICE.gpu_name, DEVICE.compute_capability))
    monkeypatch.setattr(
        engine_build, "open_engine", lambda path: OnnxRuntimeBackend(graph or built_from["graph"], threads=1)
    )


def invoke(*args):
    return CliRunner().invoke(app, ["engine", *map(str, args)])


def test_engine_is_built_checked_and_recorded_in_the_manifest(bundle_dir, monkeypatch):
    log = _Recorder()
    stand_ins(monkeypatch, log=log)
    res = invoke(bundle_dir)
    assert res.exit_code == 0, res.output
    calls = {c[0]: c[1:] for c in log.calls}
    assert calls["parse_from_file"][0].endswith("model_fp16.onnx")  # the bundle's precision
    bundle = load_bundle(bundle_dir, use_engine=True, device=DEVICE)  # checksums and device verified
    assert bundle.precision == "fp16" and bundle.engine.precision == "fp16"
    assert bundle.versions["tensorrt"] == "10.3.0.26" and bundle.versions["torch"]  # export's kept
    assert {"model.engine", "timing.cache", "check_scores_fp16.npy"} <= set(bundle.files)
    check = bundle.parity["engine_check"]
    assert check["max_relative_error"] == 0.0 and check["limit"] == ENGINE_DRIFT_LIMITS["fp16"]
    assert check["clouds"] == 1  # tiny n = 256: only the full-size check cloud fits the profile 256..256
    assert "engine: fp16, TensorRT 10.3.0.26 on Orin" in res.stdout
    assert "check vs onnxruntime: 1 clouds, 256 points" in res.stdout


def test_a_rebuild_starts_from_the_timing_cache(bundle_dir, monkeypatch):
    stand_ins(monkeypatch)
    assert invoke(bundle_dir).exit_code == 0
    log = _Recorder()
    stand_ins(monkeypatch, log=log)
    assert invoke(bundle_dir, "--precision", "fp32").exit_code == 0
    calls = {c[0]: c[1:] for c in log.calls}
    assert calls["create_timing_cache"] == (b"cache:",)  # what the first build wrote
    bundle = load_bundle(bundle_dir)
    assert bundle.precision == "fp32" and bundle.engine.precision == "fp32"


def test_drifting_engine_is_refused_and_the_bundle_is_unchanged(bundle_dir, tmp_path, monkeypatch):
    before = {p.name: p.read_bytes() for p in bundle_dir.iterdir()}
    stand_ins(monkeypatch, graph=perturbed_graph(bundle_dir / "model_fp16.onnx", tmp_path / "bad.onnx"))
    res = invoke(bundle_dir)
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "differ from onnxruntime's on the bundle's check clouds" in errors[0]
    assert errors[0].startswith(f"error: {bundle_dir}: ")  # the bundle named, not a temporary folder
    assert "the engine was not kept" in res.output
    assert {p.name: p.read_bytes() for p in bundle_dir.iterdir()} == before


def test_check_comparison_real_onnxruntime_both_sides(bundle_dir, tmp_path):
    from st3d_edge.runtime.backends import OnnxRuntimeBackend

    bundle = load_bundle(bundle_dir)
    for precision, graph in (("fp32", "model.onnx"), ("fp16", "model_fp16.onnx")):
        checks = read_check_clouds(bundle_dir, set(bundle.files), precision)
        assert len(checks.clouds) == 3
        same = OnnxRuntimeBackend(bundle_dir / graph, threads=1)
        assert compare(same.run, checks, precision).max_relative_error <= 1e-6
        bad = OnnxRuntimeBackend(perturbed_graph(bundle_dir / graph, tmp_path / f"bad-{graph}"), threads=1)
        result = compare(bad.run, checks, precision)
        assert not result.passed and result.max_relative_error > ENGINE_DRIFT_LIMITS[precision]


def test_missing_graph_checks_tensorrt_and_profile_are_one_line_errors(bundle_dir, monkeypatch):
    bundle = load_bundle(bundle_dir)
    with pytest.raises(St3dError, match="has no check clouds for fp16"):
        read_check_clouds(bundle_dir, set(bundle.files) - {"check_scores_fp16.npy"}, "fp16")
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    res = invoke(bundle_dir)
    assert res.exit_code == 2 and "tensorrt is not installed" in res.output
    stand_ins(monkeypatch)
    res = invoke(bundle_dir, "--profile-min", "200", "--profile-opt", "300", "--profile-max", "300")
    assert res.exit_code == 0, res.output  # the 256-point cloud fits
    res = invoke(bundle_dir, "--profile-min", "300", "--profile-max", "400")
    assert res.exit_code == 2 and "k <= min <= opt <= max" in res.output  # opt defaults to n = 256
    res = invoke(bundle_dir, "--profile-min", "300", "--profile-opt", "300", "--profile-max", "400")
    assert res.exit_code == 2 and "no check cloud fits the engine profile 300..400" in res.output
    res = invoke(bundle_dir.parent / "nothing")
    assert res.exit_code == 2 and "bundle folder not found" in res.output


def test_engine_command_runs_with_torch_blocked(bundle_dir, tmp_path):
    """The whole device path without torch: build, check, manifest rewrite and re-signing."""
    from st3d_edge.runtime.bundle import rewrite_manifest
    from st3d_edge.runtime.signing import generate_keypair

    key, pub = tmp_path / "line.key", tmp_path / "line.pub"
    generate_keypair(key, pub)
    rewrite_manifest(load_bundle(bundle_dir), signing_key=key)
    code = f"""
import sys
from pathlib import Path
from tests.test_engine_command import DEVICE, stand_ins
from st3d_edge.runtime.bundle import load_bundle

class Patch:
    def setitem(self, mapping, key, value): mapping[key] = value
    def setattr(self, target, name, value): setattr(target, name, value)

stand_ins(Patch())
from typer.testing import CliRunner
from st3d_edge.cli import app
res = CliRunner().invoke(app, ["engine", {str(bundle_dir)!r}, "--sign", {str(key)!r}])
assert res.exit_code == 0, res.output
assert load_bundle({str(bundle_dir)!r}, use_engine=True, device=DEVICE, trust=[Path({str(pub)!r})]).signatures
assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr + res.stdout
    assert res.stdout.strip().endswith("ok")
    assert json.loads((bundle_dir / "manifest.json").read_text())["engine"]["precision"] == "fp16"


def test_on_a_jetson_missing_tensorrt_points_to_jetpack(monkeypatch):
    import platform

    from st3d_edge.errors import gpu_extra, missing_tensorrt

    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert gpu_extra() == "jetson"
    message = str(missing_tensorrt("needed to build a TensorRT engine"))
    assert "comes with JetPack" in message and "--system-site-packages" in message
    assert "[gpu]" not in message
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert gpu_extra() == "gpu" and "st3d-edge[gpu]" in str(missing_tensorrt())


def test_a_signed_bundle_is_signed_again_or_refused(bundle_dir, tmp_path, monkeypatch):
    from st3d_edge.runtime.bundle import rewrite_manifest
    from st3d_edge.runtime.signing import generate_keypair

    key, pub = tmp_path / "line.key", tmp_path / "line.pub"
    generate_keypair(key, pub)
    rewrite_manifest(load_bundle(bundle_dir), signing_key=key)  # as `export --sign` leaves it
    stand_ins(monkeypatch)
    res = invoke(bundle_dir)
    assert res.exit_code == 2 and "is signed: give --sign KEY" in res.output
    assert not (bundle_dir / "model.engine").exists()
    res = invoke(bundle_dir, "--sign", key)
    assert res.exit_code == 0, res.output
    bundle = load_bundle(bundle_dir, trust=[pub], use_engine=True, device=DEVICE)
    assert bundle.signatures and bundle.engine is not None


def test_a_triton_plan_in_the_bundle_gets_the_new_engine(bundle_dir, monkeypatch):
    plan = bundle_dir / "triton" / "st3d_tire" / "1" / "model.plan"
    plan.parent.mkdir(parents=True)
    plan.write_bytes(b"OLD ENGINE")  # as `export --format all` left it, from an earlier build
    stand_ins(monkeypatch)
    assert invoke(bundle_dir).exit_code == 0
    assert plan.read_bytes() == (bundle_dir / "model.engine").read_bytes() == b"ENGINE"
