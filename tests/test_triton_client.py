"""The Triton client backend, with a stand-in ``tritonclient.http`` serving the graph by onnxruntime.

The stand-in is not Triton: it checks the request the client builds (model name, tensor names,
shapes, dtypes) and answers with onnxruntime, so the pipeline around the remote network is tested.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from st3d_edge.errors import St3dError
from st3d_edge.runtime.backends import OnnxRuntimeBackend
from st3d_edge.runtime.bundle import load_bundle
from st3d_edge.runtime.pipeline import ScanScorer
from tests.runtime_fixtures import organized_cloud
from tests.test_infer_cli import make_bundle, write_scan


def _stand_in(graph, requests: list) -> types.ModuleType:
    http = types.ModuleType("tritonclient.http")
    session = OnnxRuntimeBackend(graph, threads=1)

    class InferInput:
        def __init__(self, name, shape, dtype):
            self.name, self.shape, self.dtype = name, shape, dtype

        def set_data_from_numpy(self, array):
            assert list(array.shape) == self.shape and array.flags.c_contiguous
            self.array = array

    class InferRequestedOutput:
        def __init__(self, name):
            self.name = name

    class Result:
        def __init__(self, scores):
            self.scores = scores

        def as_numpy(self, name):
            assert name == "scores"
            return self.scores

    class InferenceServerClient:
        def __init__(self, url):
            self.url = url

        def infer(self, model, inputs, outputs=None):
            requests.append((model, [(i.name, i.dtype, i.array.dtype.name) for i in inputs], outputs[0].name))
            feeds = {i.name: i.array for i in inputs}
            return Result(session.run(feeds["points"], feeds["knn"]))

    http.InferInput, http.InferRequestedOutput = InferInput, InferRequestedOutput
    http.InferenceServerClient = InferenceServerClient
    return http


def test_pipeline_with_the_network_on_triton_matches_local_onnxruntime(tmp_path, monkeypatch):
    from st3d_edge.runtime.triton_client import TritonBackend

    bundle = load_bundle(make_bundle(tmp_path / "bundle"))
    requests = []
    package = types.ModuleType("tritonclient")
    package.http = _stand_in(bundle.onnx_path(), requests)
    monkeypatch.setitem(sys.modules, "tritonclient", package)
    monkeypatch.setitem(sys.modules, "tritonclient.http", package.http)
    scan = write_scan(tmp_path / "scan.tiff", organized_cloud(16, 18, seed=4))
    remote = ScanScorer(bundle, TritonBackend("localhost:8000", bundle)).score_file(scan)
    local = ScanScorer(bundle, OnnxRuntimeBackend(bundle.onnx_path(), threads=1)).score_file(scan)
    assert np.array_equal(remote.anomaly_map, local.anomaly_map) and remote.verdict == local.verdict
    assert requests == [("st3d_toy", [("points", "FP32", "float32"), ("knn", "INT32", "int32")], "scores")]


def test_missing_tritonclient_is_one_line(tmp_path, monkeypatch):
    from st3d_edge.runtime.triton_client import TritonBackend

    monkeypatch.setitem(sys.modules, "tritonclient", None)
    monkeypatch.setitem(sys.modules, "tritonclient.http", None)
    with pytest.raises(St3dError, match=r"tritonclient is not installed: pip install 'tritonclient\[http\]'"):
        TritonBackend("localhost:8000", load_bundle(make_bundle(tmp_path / "bundle")))
