"""The FP16 graph: FP16 where the design says, FP32 at the boundaries, and its drift from FP32."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from st3d_edge.export.onnx_graph import check_graph, scorer_graph
from st3d_edge.export.parity import onnx_session, relative_error, run_session
from st3d_edge.export.precision import fp16_score_function, graph_float_types, torch_dtype
from st3d_edge.model.network import DescriptorNet
from tests.export_reference import cloud_and_knn

D, K = 16, 8
# FP16 carries 11 significant bits (relative spacing 1e-3) through eight LFA layers; the
# scores' drift stays well below 1e-2 on these clouds (measured: ~1e-4). A looser bound than
# any FP32 comparison, and the benchmark prints the drift at the paper's sizes.
FP16_SCORE_DRIFT = 1e-2


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(2)
    rng = np.random.default_rng(2)
    mu = rng.normal(0, 0.3, D).astype(np.float32)
    sigma = rng.uniform(0.5, 2, D).astype(np.float32)
    return DescriptorNet(D, 2), DescriptorNet(D, 2), 0.004, mu, sigma


@pytest.fixture(scope="module")
def fp16_graph(pair):
    return scorer_graph(*pair, K, precision="fp16")


def test_fp16_only_between_the_two_casts(fp16_graph):
    check_graph(fp16_graph)
    types = graph_float_types(fp16_graph)
    nodes = [n for n in fp16_graph.graph.node if n.op_type != "Constant"]
    casts = [i for i, n in enumerate(nodes) if n.op_type == "Cast"]
    assert len(casts) == 2
    before, between, after = nodes[: casts[0]], nodes[casts[0] : casts[1]], nodes[casts[1] :]
    # division by s and G: FP32
    assert {n.op_type for n in before} >= {"Div", "Sub", "Sqrt"}
    assert all(types[n.name] <= {"float", "int32", "int64"} for n in before)
    # both networks: FP16 (the first Cast produces FP16)
    assert all(types[n.name] == {"float16"} for n in between)
    assert {"Gemm", "MatMul", "Gather", "ReduceSum", "LeakyRelu"} <= {n.op_type for n in between}
    # normalisation, distance and the output: FP32
    assert all(types[n.name] == {"float"} for n in after)
    assert [n.op_type for n in after[-6:]] == ["Sub", "Div", "Sub", "Mul", "ReduceSum", "Sqrt"]
    weights = {i.name: i.data_type for i in fp16_graph.graph.initializer}
    assert weights["mu"] == weights["sigma"] == weights["s"] == onnx.TensorProto.FLOAT
    # every Gemm/MatMul reads at least one weight (an initializer, in whichever operand position
    # the layout puts it), and every weight it reads is FP16
    for node in (n for n in between if n.op_type in ("Gemm", "MatMul")):
        node_weights = [name for name in node.input if name in weights]
        assert node_weights, node.name
        assert all(weights[name] == onnx.TensorProto.FLOAT16 for name in node_weights), node.name
    assert fp16_graph.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_fp16_drift_against_fp32_graph(pair, fp16_graph):
    fp32 = onnx_session(scorer_graph(*pair, K).SerializeToString(), threads=1)
    fp16 = onnx_session(fp16_graph.SerializeToString(), threads=1)
    score16 = fp16_score_function(*pair, K, threads=1)
    rng = np.random.default_rng(4)
    for n in (50, 300):
        points, knn = cloud_and_knn(rng, n, K)
        reference = run_session(fp32, points, knn)
        drifted = run_session(fp16, points, knn)
        assert drifted.dtype == np.float32
        assert 0 < relative_error(drifted, reference) <= FP16_SCORE_DRIFT  # > 0: really FP16 inside
        assert np.array_equal(score16(points, knn), drifted)


def test_unknown_precision_is_refused():
    assert torch_dtype("fp16") == torch.float16
    with pytest.raises(ValueError, match="fp32, fp16"):
        torch_dtype("int8")
