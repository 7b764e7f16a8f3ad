"""The exported scorer graph: same scores as PyTorch, ONNX rules, TensorRT-parsable ops."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from st3d_edge.export.fused_scorer import FusedScorer
from st3d_edge.export.onnx_graph import (
    OPSET,
    build_fused_scorer,
    check_graph,
    constant_only_nodes,
    export_scorer_onnx,
    scorer_graph,
)
from st3d_edge.export.parity import onnx_session, relative_error, run_session, torch_scores
from st3d_edge.export.trt_supported_ops import TRT_SUPPORTED_ONNX_OPS, unsupported_ops
from st3d_edge.model.network import DescriptorNet
from st3d_edge.model.scorer import Scorer
from tests.export_reference import NETWORK_FLOAT32, cloud_and_knn, random_net, reference_scores
from tests.helpers import assert_close

D, BLOCKS, K = 16, 2, 8


@pytest.fixture(scope="module")
def trained_pair():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    teacher, student = DescriptorNet(D, BLOCKS), DescriptorNet(D, BLOCKS)
    mu = rng.normal(0, 0.5, D).astype(np.float32)
    sigma = rng.uniform(0.5, 2.0, D).astype(np.float32)
    return teacher, student, 0.004, mu, sigma


@pytest.fixture(scope="module")
def fp32_graph(trained_pair):
    return scorer_graph(*trained_pair, K)


def _scores_torch(pair, points, knn):
    return torch_scores(Scorer(*pair).eval(), points, knn)


def test_fused_module_matches_float64_reference_by_hand():
    """The rearranged module against the paper's formulation written out in numpy (float64)."""
    rng = np.random.default_rng(0)
    for k in (8, 6):  # 6: 1/k is not a power of two, the folding is exact only up to rounding
        teacher, student = random_net(rng, D, BLOCKS), random_net(rng, D, BLOCKS)
        mu, sigma = rng.normal(size=D), rng.uniform(0.5, 2.0, D)
        points, knn = cloud_and_knn(rng, 150, k)
        module = FusedScorer(teacher, student, 0.004, mu, sigma, k).eval()
        with torch.no_grad():
            got = module(torch.from_numpy(points), torch.from_numpy(knn)).numpy()
        want = reference_scores(teacher, student, 0.004, mu, sigma, points, knn)
        assert_close(got, want, **NETWORK_FLOAT32, what=f"k={k}")


@pytest.mark.parametrize("absolute_coords", [False, True])
def test_fused_module_matches_model_scorer(absolute_coords):
    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    pair = (DescriptorNet(D, BLOCKS, absolute_coords), DescriptorNet(D, BLOCKS, absolute_coords))
    mu, sigma = rng.normal(size=D).astype(np.float32), rng.uniform(0.5, 2, D).astype(np.float32)
    points, knn = cloud_and_knn(rng, 120, K)
    module = build_fused_scorer(*pair, 0.003, mu, sigma, K)
    with torch.no_grad():
        got = module(torch.from_numpy(points), torch.from_numpy(knn)).numpy()
    want = _scores_torch((*pair, 0.003, mu, sigma), points, knn)
    assert relative_error(got, want) <= 1e-4


def test_onnxruntime_matches_pytorch_on_clouds_of_other_sizes(trained_pair, fp32_graph):
    """The design's parity bound (PARITY_LIMIT: max relative error <= 1e-4), n differing from the trace."""
    session = onnx_session(fp32_graph.SerializeToString(), threads=1)
    rng = np.random.default_rng(5)
    for n in (K, 97, 400):
        points, knn = cloud_and_knn(rng, n, K)
        got = run_session(session, points, knn)
        want = _scores_torch(trained_pair, points, knn)
        assert got.shape == (n,) and got.dtype == np.float32
        assert relative_error(got, want) <= 1e-4, n


def test_scores_are_translation_invariant_and_permutation_equivariant(trained_pair, fp32_graph):
    session = onnx_session(fp32_graph.SerializeToString(), threads=1)
    rng = np.random.default_rng(6)
    points, knn = cloud_and_knn(rng, 200, K)
    base = run_session(session, points, knn)
    shifted = run_session(session, points + np.float32([0.01, -0.02, 0.005]), knn)
    assert_close(shifted, base, rtol=1e-3, atol=1e-4, what="translation (float32 coordinates shift)")
    perm = rng.permutation(len(points))
    inverse = np.argsort(perm)
    permuted = run_session(session, points[perm], inverse[knn[perm]].astype(np.int32))
    assert_close(permuted, base[perm], rtol=1e-5, atol=1e-6, what="permutation")


def test_graph_follows_the_rules(fp32_graph):
    assert [o.version for o in fp32_graph.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    onnx.checker.check_model(fp32_graph, full_check=True)
    ops = {node.op_type for node in fp32_graph.graph.node}
    assert unsupported_ops(ops) == [], ops
    assert "Shape" not in ops  # k is fixed and n is only ever inferred (-1): no shape arithmetic
    assert constant_only_nodes(fp32_graph) == []
    inputs = {i.name: i.type.tensor_type for i in fp32_graph.graph.input}
    assert inputs["points"].elem_type == onnx.TensorProto.FLOAT
    assert inputs["knn"].elem_type == onnx.TensorProto.INT32
    assert [d.dim_param or d.dim_value for d in inputs["points"].shape.dim] == ["n", 3]
    assert [d.dim_param or d.dim_value for d in inputs["knn"].shape.dim] == ["n", K]
    assert [o.name for o in fp32_graph.graph.output] == ["scores"]


def test_graph_computes_g_once_and_one_gemm_per_channel_group(fp32_graph):
    """G (one Gather of the points) is shared by every LFA, teacher and student alike; the pair
    tensors are built CHANNEL_GROUP channels at a time."""
    from st3d_edge.export.fused_scorer import CHANNEL_GROUP

    def groups(channels: int) -> int:
        return -(-channels // CHANNEL_GROUP)

    point_gathers = [n for n in fp32_graph.graph.node if n.op_type == "Gather" and "knn" in n.input]
    gemms = [n for n in fp32_graph.graph.node if n.op_type == "Gemm"]
    divisions = [n for n in fp32_graph.graph.node if n.op_type == "Div" and "points" in n.input]
    # per block, both networks: geo1 (d/4 each) and geo2 (d/2 each) in one set of groups
    assert len(divisions) == 1 and len(gemms) == BLOCKS * groups(3 * D // 2)
    # the coordinates once, then per neighbour sum one Gather per group: the first block sums
    # geo1 (d/2 channels, both networks), later blocks h / k (d/2) and the first LFA (d)
    assert len(point_gathers) == 1 + groups(D // 2) + (BLOCKS - 1) * (groups(D // 2) + groups(D))


def test_check_graph_rejects_what_tensorrt_cannot_parse_and_leftover_constants():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])
    unique = helper.make_model(
        helper.make_graph([helper.make_node("Unique", ["x"], ["y"])], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    with pytest.raises(ValueError, match="Unique"):
        check_graph(unique)
    const = helper.make_tensor("c", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    folded_late = helper.make_model(
        helper.make_graph(
            [helper.make_node("Neg", ["c"], ["nc"]), helper.make_node("Add", ["x", "nc"], ["y"])],
            "g",
            [x],
            [y],
            [const],
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    with pytest.raises(ValueError, match="do not depend on the inputs: Neg"):
        check_graph(folded_late)


def test_supported_list_is_explicit_and_excludes_unsupported_ops():
    for op in ("Gather", "ReduceSum", "Gemm", "MatMul", "LeakyRelu", "Concat", "Slice", "Cast", "Sqrt"):
        assert op in TRT_SUPPORTED_ONNX_OPS
    for op in ("Unique", "NonMaxSuppressionX", "SequenceAt", "StringNormalizer", "DFT", "Det"):
        assert op not in TRT_SUPPORTED_ONNX_OPS
    assert unsupported_ops(["Add", "Unique", "Det", "Add"]) == ["Det", "Unique"]


def test_feature_outputs_only_when_asked(trained_pair, tmp_path):
    path = export_scorer_onnx(*trained_pair, K, tmp_path / "debug.onnx", feature_outputs=True)
    model = onnx.load(str(path))
    assert [o.name for o in model.graph.output] == [
        "scores",
        "student_features",
        "teacher_features_normalized",
    ]
    rng = np.random.default_rng(8)
    points, knn = cloud_and_knn(rng, 60, K)
    scores, student, teacher = onnx_session(str(path), threads=1).run(None, {"points": points, "knn": knn})
    assert student.shape == teacher.shape == (60, D)
    assert_close(scores, np.linalg.norm(student - teacher, axis=1), rtol=1e-5, atol=1e-6, what="debug")
    scorer = Scorer(*trained_pair).eval()
    with torch.no_grad():
        want_s, want_t = scorer.features(torch.from_numpy(points), torch.from_numpy(knn).long())
    assert_close(student, want_s.numpy(), **NETWORK_FLOAT32, what="student features")
    assert_close(teacher, want_t.numpy(), **NETWORK_FLOAT32, what="normalised teacher features")
