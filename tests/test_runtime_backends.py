from __future__ import annotations

import sys

import numpy as np
import pytest

from st3d_edge.errors import MissingExtraError, St3dError
from st3d_edge.runtime import backends
from st3d_edge.runtime.backends import OnnxRuntimeBackend, select_backend
from tests.helpers import FLOAT32_SAME_MATH, assert_close
from tests.runtime_fixtures import toy_scores_reference, write_toy_scorer


def _random_graph(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((n, 3)).astype(np.float32)
    knn = rng.integers(0, n, size=(n, k)).astype(np.int32)
    knn[:, 0] = np.arange(n)
    return points, knn


def test_hand_worked_case(tmp_path):
    model = write_toy_scorer(tmp_path / "m.onnx", k=2, s=0.5)
    points = np.array([[0, 0, 0], [2, 0, 0], [0, 4, 0]], dtype=np.float32)
    knn = np.array([[0, 1], [1, 0], [2, 0]], dtype=np.int32)
    scores = OnnxRuntimeBackend(model, threads=1).run(points, knn)
    # point 0: centre (1,0,0) -> 1 / 0.5 = 2; point 1 likewise; point 2: centre (0,2,0) -> 4
    assert_close(scores, [2.0, 2.0, 4.0], **FLOAT32_SAME_MATH, what="toy scores")


@pytest.mark.parametrize("n", [1, 17, 300])
def test_onnxruntime_matches_reference_for_any_n(tmp_path, n):
    k = 5
    model = write_toy_scorer(tmp_path / "m.onnx", k=k)
    backend = OnnxRuntimeBackend(model, threads=1)
    points, knn = _random_graph(n, k, seed=n)
    assert backend.name == "onnxruntime-cpu" and backend.device == "CPU"
    assert_close(backend.run(points, knn), toy_scores_reference(points, knn), **FLOAT32_SAME_MATH, what="ort")


def test_missing_and_corrupt_model_are_one_line_errors(tmp_path):
    with pytest.raises(St3dError, match="nope.onnx: ONNX model not found"):
        OnnxRuntimeBackend(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(St3dError, match="bad.onnx: onnxruntime cannot load it") as info:
        OnnxRuntimeBackend(bad)
    assert "\n" not in str(info.value)


def test_wrong_graph_interface_is_rejected(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    with pytest.raises(St3dError, match="not a scorer graph"):
        OnnxRuntimeBackend(path)


def test_auto_falls_back_to_cpu_and_says_why(tmp_path, monkeypatch):
    model = write_toy_scorer(tmp_path / "m.onnx", k=3)
    monkeypatch.setattr(backends, "onnxruntime_gpu_providers", lambda: [])
    picked = select_backend("auto", model, engine_path=None, threads=1)
    assert picked.backend.name == "onnxruntime-cpu"
    assert "CPU" in picked.reason


def test_tensorrt_without_engine_or_library(tmp_path, monkeypatch):
    model = write_toy_scorer(tmp_path / "m.onnx", k=3)
    with pytest.raises(St3dError, match="no TensorRT engine"):
        select_backend("tensorrt", model, engine_path=None)
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\0")
    # TensorRT is not installable here; when it is missing the error names the extra.
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingExtraError, match=r"st3d-edge\[gpu\]"):
        select_backend("tensorrt", model, engine_path=engine)
    # auto with an engine but no TensorRT goes on to onnxruntime.
    monkeypatch.setattr(backends, "onnxruntime_gpu_providers", lambda: [])
    assert select_backend("auto", model, engine_path=engine, threads=1).backend.name == "onnxruntime-cpu"


def test_missing_onnxruntime_names_the_runtime_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"st3d-edge\[runtime\]"):
        OnnxRuntimeBackend(tmp_path / "m.onnx")


def test_unknown_backend_choice():
    with pytest.raises(St3dError, match="unknown backend"):
        select_backend("magic", "m.onnx")


class _FakeDeviceArray:
    """A host array posing as a device array: what the TensorRT backend touches of numba's."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape = array.shape

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"data": (self.array.ctypes.data, False), "shape": self.shape, "version": 3}

    def __getitem__(self, key) -> _FakeDeviceArray:
        return _FakeDeviceArray(self.array[key])

    def copy_to_device(self, host, stream=None) -> None:
        self.array[...] = host

    def copy_to_host(self, stream=None) -> np.ndarray:
        return self.array.copy()


def _stand_in_tensorrt(monkeypatch, profile=(1024, 4096, 4096), k=8) -> list:
    """Stand-ins for ``tensorrt`` and ``numba.cuda`` with the calls TensorRTBackend makes.

    Running the engine writes 1.0 for every point; ``execute_async_v3`` calls are recorded with
    the input shapes set before them, so a test sees what would have reached TensorRT.
    """
    import types

    executed = []
    trt = types.ModuleType("tensorrt")

    class Logger:
        WARNING = "warning"

        def __init__(self, severity):
            pass

    class Context:
        def __init__(self):
            self.shapes, self.addresses = {}, {}

        def set_tensor_address(self, name, pointer):
            self.addresses[name] = pointer

        def set_input_shape(self, name, shape):
            self.shapes[name] = tuple(shape)

        def execute_async_v3(self, stream):
            executed.append(dict(self.shapes))
            return True

    class Engine:
        num_io_tensors = 3

        def get_tensor_name(self, i):
            return ("points", "knn", "scores")[i]

        def create_execution_context(self):
            return Context()

        def get_tensor_profile_shape(self, name, index):
            return tuple((v, 3 if name == "points" else k) for v in profile)

        def get_tensor_shape(self, name):
            return (-1, 3) if name == "points" else (-1, k)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            return Engine()

    trt.Logger, trt.Runtime = Logger, Runtime
    cuda = types.SimpleNamespace(
        stream=lambda: types.SimpleNamespace(handle=None, synchronize=lambda: None),
        device_array=lambda shape, dtype: _FakeDeviceArray(np.ones(shape, dtype=dtype)),
        get_current_device=lambda: types.SimpleNamespace(name=b"Stand-in GPU"),
    )
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "numba", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setitem(sys.modules, "numba.cuda", cuda)
    return executed


def test_tensorrt_backend_refuses_n_outside_the_engine_profile(tmp_path, monkeypatch):
    executed = _stand_in_tensorrt(monkeypatch, profile=(1024, 4096, 4096), k=8)
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"stand-in")
    backend = backends.TensorRTBackend(engine)
    assert (backend.min_n, backend.max_n, backend.k) == (1024, 4096, 8)

    points, knn = _random_graph(1024, 8)
    assert backend.run(points, knn).shape == (1024,)
    assert executed == [{"points": (1024, 3), "knn": (1024, 8)}]
    for n in (1023, 4097):
        points, knn = _random_graph(n, 8)
        with pytest.raises(
            St3dError, match=rf"model.engine: the engine takes 1024 to 4096 points .* got {n}"
        ) as info:
            backend.run(points, knn)
        assert "\n" not in str(info.value)
    assert len(executed) == 1  # nothing outside the profile reached TensorRT
