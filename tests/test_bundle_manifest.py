"""The bundle manifest: round trip, and every way the runtime refuses a bundle it cannot trust."""

from __future__ import annotations

import json
import sys

import pytest

from st3d_edge.errors import MissingExtraError, St3dError
from st3d_edge.runtime.bundle import (
    FORMAT_VERSION,
    DeviceIdentity,
    EngineInfo,
    check_engine_device,
    current_device,
    load_bundle,
    sha256_file,
    write_manifest,
)

ORIN = DeviceIdentity("10.3.0", "Orin", "8.7")


def _write(folder, engine=False):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(b"onnx bytes " * 100)
    info = None
    if engine:
        (folder / "model.engine").write_bytes(b"engine bytes")
        (folder / "timing.cache").write_bytes(b"cache")
        info = EngineInfo("model.engine", "fp32", ORIN, 1024, 4096, 4096, 1 << 30)
    return write_manifest(
        folder,
        category="tire",
        n=4096,
        k=32,
        d=64,
        s=0.0021,
        sampler="fps",
        precision="fp32",
        models={"fp32": "model.onnx"},
        thresholds={"pixel": 1.5, "image": 2.5},
        image_score={"neighbours": 8},
        versions={"onnx": "1.17"},
        engine=info,
    )


def test_round_trip_keeps_every_field(tmp_path):
    written = _write(tmp_path / "b", engine=True)
    loaded = load_bundle(tmp_path / "b")
    assert loaded == written
    assert loaded.format_version == FORMAT_VERSION
    assert loaded.onnx_path() == tmp_path / "b" / "model.onnx"
    assert loaded.engine_path == tmp_path / "b" / "model.engine"
    assert loaded.files["model.onnx"].sha256 == sha256_file(tmp_path / "b" / "model.onnx")
    assert loaded.files["model.onnx"].size == 1100
    assert set(loaded.files) == {"model.onnx", "model.engine", "timing.cache"}
    assert loaded.thresholds == {"pixel": 1.5, "image": 2.5}


def test_missing_file_is_refused_naming_it(tmp_path):
    _write(tmp_path / "b")
    (tmp_path / "b" / "model.onnx").unlink()
    with pytest.raises(St3dError, match=r"model.onnx: missing from the bundle; export again"):
        load_bundle(tmp_path / "b")


def test_changed_bytes_are_refused_by_checksum(tmp_path):
    _write(tmp_path / "b")
    path = tmp_path / "b" / "model.onnx"
    data = bytearray(path.read_bytes())
    data[10] ^= 1  # same size, one bit flipped
    path.write_bytes(bytes(data))
    with pytest.raises(St3dError, match="checksum does not match"):
        load_bundle(tmp_path / "b")
    assert load_bundle(tmp_path / "b", verify_checksums=False).category == "tire"


def test_changed_size_is_refused(tmp_path):
    _write(tmp_path / "b")
    with open(tmp_path / "b" / "model.onnx", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(St3dError, match="has 1101 bytes, the manifest says 1100"):
        load_bundle(tmp_path / "b")


def test_newer_format_is_refused(tmp_path):
    _write(tmp_path / "b")
    manifest = tmp_path / "b" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["format_version"] = FORMAT_VERSION + 1
    manifest.write_text(json.dumps(data))
    with pytest.raises(St3dError, match="newer than this st3d-edge reads"):
        load_bundle(tmp_path / "b")


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "missing: not a complete bundle"),
        ("{not json", "not valid JSON"),
        ('{"format_version": 2}', "field category: must be a non-empty string"),
        ('{"format_version": 1}', "bundle format 1 has no manifest checksum"),
    ],
)
def test_bad_manifest_is_refused(tmp_path, content, message):
    _write(tmp_path / "b")
    manifest = tmp_path / "b" / "manifest.json"
    if content is None:
        manifest.unlink()
    else:
        manifest.write_text(content)
    with pytest.raises(St3dError, match=message):
        load_bundle(tmp_path / "b")


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(St3dError, match="bundle folder not found"):
        load_bundle(tmp_path / "nothing")


def test_manifest_must_not_name_absent_files(tmp_path):
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match="not there: model.onnx"):
        write_manifest(
            tmp_path / "b", category="x", n=1, k=1, d=1, s=1.0, sampler="fps", precision="fp32",
            models={"fp32": "model.onnx"}, thresholds={}, image_score={}, versions={},
        )  # fmt: skip


def test_engine_of_another_tensorrt_or_gpu_is_refused(tmp_path):
    bundle = _write(tmp_path / "b", engine=True)
    check_engine_device(bundle, ORIN)  # the device it was built on
    assert load_bundle(tmp_path / "b", use_engine=True, device=ORIN).engine.device == ORIN
    with pytest.raises(St3dError, match=r"built by TensorRT 10.3.0, this device has 10.4.0; export again"):
        load_bundle(tmp_path / "b", use_engine=True, device=DeviceIdentity("10.4.0", "Orin", "8.7"))
    with pytest.raises(St3dError, match=r"built for Orin \(sm 8.7\), this device has NVIDIA H100"):
        check_engine_device(bundle, DeviceIdentity("10.3.0", "NVIDIA H100", "9.0"))


def test_engine_use_without_engine_or_tensorrt(tmp_path, monkeypatch):
    bundle = _write(tmp_path / "b")
    with pytest.raises(St3dError, match="has no TensorRT engine"):
        check_engine_device(bundle, ORIN)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(MissingExtraError, match=r"st3d-edge\[gpu\]"):
        current_device()
