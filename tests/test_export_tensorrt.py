"""Everything around the TensorRT engine builder that can be checked without TensorRT.

The stand-in ``tensorrt`` module below records the calls ``build_engine`` makes. This checks
that the builder follows the documented call sequence with the intended arguments; it is not
a test of TensorRT itself (TensorRT cannot be installed here). Engines are checked against
onnxruntime only on a machine with TensorRT and a GPU (marked ``gpu``).
"""

from __future__ import annotations

import sys
import types

import pytest

from st3d_edge.errors import MissingExtraError, St3dError
from st3d_edge.runtime.tensorrt_build import EngineOptions, build_engine, resolve_profile


@pytest.mark.parametrize(
    "n, k, options, expected",
    [
        (64000, 32, EngineOptions(), (1024, 64000, 64000)),  # the defaults 1024 / n / n
        (256, 8, EngineOptions(), (256, 256, 256)),  # n below 1024: min follows n
        (64000, 32, EngineOptions(profile_min=2000, profile_opt=30000), (2000, 30000, 64000)),
        (64000, 32, EngineOptions(profile_max=80000), (1024, 64000, 80000)),
    ],
)
def test_profile_defaults_and_choices(n, k, options, expected):
    profile = resolve_profile(n, k, options)
    assert (profile.min, profile.opt, profile.max) == expected
    assert profile.shapes("points", k) == tuple((v, 3) for v in expected)
    assert profile.shapes("knn", k) == tuple((v, k) for v in expected)


@pytest.mark.parametrize(
    "options, message",
    [
        (EngineOptions(profile_min=5000, profile_opt=4000), "k <= min <= opt <= max"),
        (EngineOptions(profile_min=16), "k <= min"),
        (EngineOptions(profile_opt=70000), "opt=70000, max=64000"),
        (EngineOptions(workspace_mib=0), "workspace must be positive"),
    ],
)
def test_bad_profiles_are_refused(options, message):
    with pytest.raises(St3dError, match=message):
        resolve_profile(64000, 32, options)


def test_missing_tensorrt_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(MissingExtraError, match=r"tensorrt is not installed.*st3d-edge\[gpu\]"):
        build_engine(tmp_path / "model.onnx", tmp_path, n=4096, k=32, precision="fp32")


class _Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, name, *args):
        self.calls.append((name, *args))

    def names(self):
        return [c[0] for c in self.calls]


def _fake_tensorrt(log: _Recorder, parse_ok=True, build_ok=True):
    """A stand-in with the attributes and methods of TensorRT's Python API that the builder uses."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0.26"

    class Logger:
        WARNING = "warning"

        def __init__(self, severity):
            log("Logger", severity)

    class Cache:
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return b"cache:" + self.data

    class Config:
        def set_memory_pool_limit(self, pool, size):
            log("set_memory_pool_limit", pool, size)

        def add_optimization_profile(self, profile):
            log("add_optimization_profile", dict(profile.shapes))

        def create_timing_cache(self, data):
            log("create_timing_cache", data)
            return Cache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            log("set_timing_cache", cache.data, ignore_mismatch)
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

        def set_flag(self, flag):  # precision flags must never be used (strongly typed)
            log("set_flag", flag)

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, lo, opt, hi):
            log("set_shape", name, lo, opt, hi)
            self.shapes[name] = (lo, opt, hi)

    class Builder:
        def __init__(self, logger):
            log("Builder")

        def create_network(self, flags):
            log("create_network", flags)
            return "network"

        def create_builder_config(self):
            log("create_builder_config")
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            log("build_serialized_network", network)
            return b"ENGINE" if build_ok else None

    class OnnxParser:
        num_errors = 0 if parse_ok else 2

        def __init__(self, network, logger):
            log("OnnxParser", network)

        def parse_from_file(self, path):
            log("parse_from_file", path)
            return parse_ok

        def get_error(self, i):
            return f"node {i}: unsupported"

    trt.Logger, trt.Builder, trt.OnnxParser = Logger, Builder, OnnxParser
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    return trt


def onnx_engine_stand_in(monkeypatch):
    """The check runs the engine: here onnxruntime on the ONNX graph beside it stands in for it."""
    import st3d_edge.runtime.engine_build as engine_build
    from st3d_edge.runtime.backends import OnnxRuntimeBackend

    def open_engine(path):
        graphs = sorted(path.parent.glob("model*.onnx"))  # the one graph the stand-in engine was built from
        built_from = [g for g in graphs if g.name == "model_fp16.onnx"] or graphs
        return OnnxRuntimeBackend(built_from[0], threads=1)

    monkeypatch.setattr(engine_build, "open_engine", open_engine)


@pytest.fixture()
def fake_gpu(monkeypatch):
    import st3d_edge.runtime.bundle as bundle

    monkeypatch.setattr(bundle, "current_gpu", lambda: ("Orin", "8.7"))


def test_builder_call_sequence_with_stand_in_module(tmp_path, monkeypatch, fake_gpu):
    log = _Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt(log))
    (tmp_path / "old.cache").write_bytes(b"OLD")
    info = build_engine(
        tmp_path / "model_fp16.onnx",
        tmp_path,
        n=4096,
        k=32,
        precision="fp16",
        options=EngineOptions(workspace_mib=512),
        previous_cache=tmp_path / "old.cache",
    )
    assert log.names() == [
        "Logger", "Builder", "create_network", "OnnxParser", "parse_from_file", "create_builder_config",
        "set_memory_pool_limit", "set_shape", "set_shape", "add_optimization_profile",
        "create_timing_cache", "set_timing_cache", "build_serialized_network",
    ]  # fmt: skip
    calls = {c[0]: c[1:] for c in log.calls}
    assert calls["create_network"] == (1 << 1,)  # STRONGLY_TYPED, and no other flag
    assert calls["parse_from_file"] == (str(tmp_path / "model_fp16.onnx"),)
    assert calls["set_memory_pool_limit"] == ("workspace", 512 << 20)
    assert calls["add_optimization_profile"] == (
        {"points": ((1024, 3), (4096, 3), (4096, 3)), "knn": ((1024, 32), (4096, 32), (4096, 32))},
    )
    assert calls["create_timing_cache"] == (b"OLD",)
    assert calls["set_timing_cache"] == (b"OLD", False)
    assert "set_flag" not in log.names()
    assert (tmp_path / "model.engine").read_bytes() == b"ENGINE"
    assert (tmp_path / "timing.cache").read_bytes() == b"cache:OLD"
    assert (info.file, info.precision, info.timing_cache) == ("model.engine", "fp16", "timing.cache")
    assert (info.device.tensorrt_version, info.device.gpu_name, info.device.compute_capability) == (
        "10.3.0.26",
        "Orin",
        "8.7",
    )
    assert (info.profile_min, info.profile_opt, info.profile_max, info.workspace_bytes) == (
        1024,
        4096,
        4096,
        512 << 20,
    )


def test_parser_and_build_failures_are_one_line_errors(tmp_path, monkeypatch, fake_gpu):
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt(_Recorder(), parse_ok=False))
    with pytest.raises(St3dError, match="parser refused the graph: node 0: unsupported; node 1: unsupported"):
        build_engine(tmp_path / "model.onnx", tmp_path, n=4096, k=32, precision="fp32")
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt(_Recorder(), build_ok=False))
    with pytest.raises(St3dError, match="could not build an engine"):
        build_engine(tmp_path / "model.onnx", tmp_path, n=4096, k=32, precision="fp32")
    assert not (tmp_path / "model.engine").exists()
