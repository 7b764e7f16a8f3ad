"""What a bundle may claim: field checks at load, names inside the folder, the manifest's own
checksum, Ed25519 signatures and the trust folder, and rewriting a manifest after a change."""

from __future__ import annotations

import json
import os

import pytest

from st3d_edge.errors import St3dError
from st3d_edge.runtime.bundle import EngineInfo, load_bundle, rewrite_manifest, write_manifest
from st3d_edge.runtime.signing import TRUST_DIR_ENV, generate_keypair
from tests.test_bundle_manifest import ORIN


def _bundle(folder, signing_key=None, **overrides):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(b"onnx bytes " * 100)
    fields = dict(
        category="tire", n=4096, k=32, d=64, s=0.0021, sampler="fps", precision="fp32",
        models={"fp32": "model.onnx"}, thresholds={"pixel": 1.5, "image": 2.5},
        image_score={"neighbours": 8}, versions={},
    )  # fmt: skip
    return write_manifest(folder, signing_key=signing_key, **{**fields, **overrides})


def _edit(folder, change):
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _keys(tmp_path, name):
    generate_keypair(tmp_path / f"{name}.key", tmp_path / f"{name}.pub")
    return tmp_path / f"{name}.key", tmp_path / f"{name}.pub"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("thresholds", {"image": float("nan"), "pixel": 1.0}, "field thresholds: image must be a finite"),
        ("thresholds", {"image": -1.0}, "field thresholds: image must be a finite number >= 0"),
        ("thresholds", {"image": "high"}, "field thresholds: image must be a finite"),
        ("n", 32, "field n: must be larger than k = 32"),
        ("n", 64.5, "field n: must be an integer"),
        ("k", True, "field k: must be an integer"),
        ("sampler", "random", "field sampler: unknown sampler 'random'"),
        ("image_score", {"neighbours": 33}, "field image_score: neighbours = 33 exceeds k = 32"),
        ("format_version", 0, "field format_version: must be an integer >= 1"),
        ("format_version", "2", "has no format_version"),
        ("s", 0.0, "field s: must be a finite number > 0"),
    ],
)
def test_bad_fields_are_refused_at_load_naming_the_field(tmp_path, field, value, message):
    _bundle(tmp_path / "b")
    _edit(tmp_path / "b", lambda data: data.__setitem__(field, value))
    with pytest.raises(St3dError, match=message):
        load_bundle(tmp_path / "b")


def test_bad_fields_are_refused_when_written_too(tmp_path):
    with pytest.raises(St3dError, match="field thresholds: pixel must be a finite"):
        _bundle(tmp_path / "b", thresholds={"pixel": float("inf")})
    assert not (tmp_path / "b" / "manifest.json").exists()


def test_hand_edited_threshold_is_caught_by_the_manifest_checksum(tmp_path):
    _bundle(tmp_path / "b")
    _edit(tmp_path / "b", lambda data: data["thresholds"].__setitem__("image", 9.0))
    with pytest.raises(St3dError, match="manifest checksum does not match"):
        load_bundle(tmp_path / "b")


@pytest.mark.parametrize("name", ["../outside.onnx", "/etc/passwd", "sub/../../x", "a\\b"])
def test_file_names_outside_the_bundle_are_refused(tmp_path, name):
    _bundle(tmp_path / "b")
    _edit(tmp_path / "b", lambda data: data["files"].__setitem__(name, {"sha256": "0" * 64, "size": 1}))
    with pytest.raises(St3dError, match="field files: .*(reaches outside|not a plain relative name)"):
        load_bundle(tmp_path / "b")


def test_symlink_out_of_the_bundle_is_refused_without_reading_it(tmp_path, monkeypatch):
    bundle = _bundle(tmp_path / "b")
    outside = tmp_path / "secret.onnx"
    outside.write_bytes((tmp_path / "b" / "model.onnx").read_bytes())
    (tmp_path / "b" / "model.onnx").unlink()
    os.symlink(outside, tmp_path / "b" / "model.onnx")
    import st3d_edge.runtime.bundle as bundle_module

    monkeypatch.setattr(bundle_module, "sha256_file", lambda path: pytest.fail(f"read {path}"))
    with pytest.raises(St3dError, match="resolves outside the bundle") as info:
        load_bundle(bundle.path)
    assert "bytes" not in str(info.value)  # nothing about the outside file is reported


def test_signed_bundle_needs_a_trusted_signature(tmp_path, monkeypatch):
    key, pub = _keys(tmp_path, "factory")
    _, stranger = _keys(tmp_path, "stranger")
    _bundle(tmp_path / "signed", signing_key=key)
    _bundle(tmp_path / "plain")
    assert load_bundle(tmp_path / "signed", trust=[pub]).signatures
    assert load_bundle(tmp_path / "plain").signatures == []  # no trust configured: checksum only
    with pytest.raises(St3dError, match="is not signed, and this device only trusts signed"):
        load_bundle(tmp_path / "plain", trust=[pub])
    with pytest.raises(St3dError, match="none of which this device trusts"):
        load_bundle(tmp_path / "signed", trust=[stranger])
    # the trust folder counts without --trust
    trust_dir = tmp_path / "trusted"
    trust_dir.mkdir()
    (trust_dir / "factory.pub").write_bytes(pub.read_bytes())
    monkeypatch.setenv(TRUST_DIR_ENV, str(trust_dir))
    with pytest.raises(St3dError, match="is not signed"):
        load_bundle(tmp_path / "plain")
    assert load_bundle(tmp_path / "signed").signatures


def test_forged_signature_is_refused(tmp_path):
    key, pub = _keys(tmp_path, "factory")
    _bundle(tmp_path / "b", signing_key=key)

    def forge(data):
        data["signatures"][0]["ed25519"] = data["signatures"][0]["ed25519"][::-1]

    _edit(tmp_path / "b", forge)
    with pytest.raises(St3dError, match="does not match the manifest"):
        load_bundle(tmp_path / "b", trust=[pub])


def test_rewrite_manifest_after_a_recalibration_and_an_engine(tmp_path):
    factory_key, factory_pub = _keys(tmp_path, "factory")
    device_key, device_pub = _keys(tmp_path, "device")
    bundle = _bundle(tmp_path / "b", signing_key=factory_key)
    with pytest.raises(St3dError, match="is signed; give the key"):
        rewrite_manifest(bundle, thresholds={"pixel": 1.0, "image": 2.0})
    with pytest.raises(St3dError, match="field thresholds"):
        rewrite_manifest(bundle, signing_key=device_key, thresholds={"image": float("nan")})
    (tmp_path / "b" / "model.engine").write_bytes(b"engine")
    (tmp_path / "b" / "timing.cache").write_bytes(b"cache")
    engine = EngineInfo("model.engine", "fp32", ORIN, 1024, 4096, 4096, 1 << 30)
    changed = rewrite_manifest(
        bundle, signing_key=device_key, thresholds={"pixel": 1.0, "image": 2.0}, engine=engine
    )
    assert changed.manifest_sha256 != bundle.manifest_sha256
    loaded = load_bundle(tmp_path / "b", trust=[factory_pub, device_pub])
    assert loaded == changed and loaded.thresholds["image"] == 2.0
    assert "model.engine" in loaded.files
    with pytest.raises(St3dError, match="none of which this device trusts"):
        load_bundle(tmp_path / "b", trust=[factory_pub])  # the factory did not sign the change
    unsigned = rewrite_manifest(loaded, drop_signatures=True, thresholds={"pixel": 1.0, "image": 3.0})
    assert unsigned.signatures == [] and load_bundle(tmp_path / "b").thresholds["image"] == 3.0
    with pytest.raises(ValueError, match="cannot set manifest field"):
        rewrite_manifest(unsigned, files={})
