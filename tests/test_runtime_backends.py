from __future__ import annotations

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
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)
    with pytest.raises(MissingExtraError, match=r"st3d-edge\[gpu\]"):
        select_backend("tensorrt", model, engine_path=engine)
    # auto with an engine but no TensorRT goes on to onnxruntime.
    monkeypatch.setattr(backends, "onnxruntime_gpu_providers", lambda: [])
    assert select_backend("auto", model, engine_path=engine, threads=1).backend.name == "onnxruntime-cpu"


def test_missing_onnxruntime_names_the_runtime_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"st3d-edge\[runtime\]"):
        OnnxRuntimeBackend(tmp_path / "m.onnx")


def test_unknown_backend_choice():
    with pytest.raises(St3dError, match="unknown backend"):
        select_backend("magic", "m.onnx")
