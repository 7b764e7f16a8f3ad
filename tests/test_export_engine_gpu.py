"""TensorRT engines against onnxruntime: needs a CUDA GPU and TensorRT (marked ``gpu``).

Tolerances, documented: the FP32 engine may run its matrix products in TF32 on Ampere and
later GPUs (TensorRT's default for FP32 layers; no builder precision flags are set), which
keeps 10 mantissa bits, so FP32 engine scores are compared with a relative error of 1e-2, and
FP16 engine scores with the FP16 graph's drift bound against the onnxruntime FP16 graph.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from st3d_edge.export.onnx_graph import export_scorer_onnx
from st3d_edge.export.parity import onnx_session, relative_error, run_session
from st3d_edge.model.network import DescriptorNet
from st3d_edge.runtime.tensorrt_build import EngineOptions, build_engine
from tests.export_reference import cloud_and_knn

pytestmark = pytest.mark.gpu
ENGINE_FP32 = 1e-2
ENGINE_FP16 = 1e-2


@pytest.mark.parametrize("precision, limit", [("fp32", ENGINE_FP32), ("fp16", ENGINE_FP16)])
def test_engine_matches_onnxruntime(tmp_path, precision, limit):
    pytest.importorskip("tensorrt")
    from st3d_edge.runtime.backends import TensorRTBackend

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    d, k, n = 16, 8, 512
    pair = (DescriptorNet(d, 2), DescriptorNet(d, 2), 0.004, rng.normal(size=d), rng.uniform(0.5, 2, d))
    onnx_path = export_scorer_onnx(*pair, k, tmp_path / "model.onnx", precision=precision)
    info = build_engine(
        onnx_path, tmp_path, n=n, k=k, precision=precision, options=EngineOptions(profile_min=k)
    )
    backend = TensorRTBackend(tmp_path / info.file)
    session = onnx_session(str(onnx_path), threads=1)
    for m in (k, 300, n):
        points, knn = cloud_and_knn(rng, m, k)
        assert (
            relative_error(np.asarray(backend.run(points, knn)), run_session(session, points, knn)) <= limit
        )
