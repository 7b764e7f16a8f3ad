"""Graph precisions: FP32 and FP16, chosen by the ONNX graph itself (no builder flags).

TensorRT 11 builds every network strongly typed and TensorRT 10.3 does when asked, so the
precision of each layer is the precision of its tensors in the ONNX graph. The FP16 graph:

- weights and activations of both networks in FP16 (every MatMul, Gemm, Gather, sum);
- FP32: the division by s, the geometric features G (differences of nearby points lose too
  much in FP16 once coordinates are divided by s), the normalisation (f_T - mu) / sigma,
  the distance and the ``scores`` output; one Cast to FP16 after G and one Cast to FP32
  before the normalisation are the only precision changes.

onnxruntime's CPU provider runs that graph, so its drift against the FP32 graph is measured
without a GPU (``fp16_score_function`` below; the benchmark prints the drift).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PRECISIONS = ("fp32", "fp16")


def torch_dtype(precision: str):
    import torch

    dtypes = {"fp32": torch.float32, "fp16": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return dtypes[precision]


def graph_float_types(model) -> dict[str, set[str]]:
    """For each node of an ONNX model, the float element types ('float', 'float16') it outputs.

    Uses ONNX shape inference; the FP16 tests check with it that only the parts named in the
    module docstring are FP32.
    """
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.output):
        elem = value.type.tensor_type.elem_type
        types[value.name] = onnx.TensorProto.DataType.Name(elem).lower()
    result = {}
    for node in inferred.graph.node:
        result[node.name] = {types[out] for out in node.output if out in types}
    return result


def fp16_score_function(teacher, student, s, mu, sigma, k: int, threads: int = 2) -> Callable:
    """``score(points[n,3] float32, knn[n,k] int32) -> scores[n]`` through the FP16 graph.

    Builds the FP16 scorer graph in memory and runs it with onnxruntime on the CPU: what a
    TensorRT FP16 engine computes, up to kernel rounding. For measuring the FP16 path's effect
    on evaluation metrics (e.g. AU-PRO) without a GPU.
    """
    from st3d_edge.export.onnx_graph import scorer_graph
    from st3d_edge.export.parity import onnx_session, run_session

    model = scorer_graph(teacher, student, s, mu, sigma, k, precision="fp16")
    session = onnx_session(model.SerializeToString(), threads=threads)

    def score(points: np.ndarray, knn: np.ndarray) -> np.ndarray:
        return run_session(session, points, knn)

    return score
