"""Export the scorer graph to ONNX: ``points[n,3] float32, knn[n,k] int32 -> scores[n] float32``.

Decisions:

- Opset 17, pinned (``OPSET``): the oldest opset with every op the graph needs, inside the
  range TensorRT 10.3's parser accepts (9..20); ReduceMean still takes ``axes`` as an
  attribute there, so no reduction depends on a computed input.
- TorchScript exporter (``dynamo=False``): it writes plain Gather with the int32 kNN indices
  and folds constants; the dynamo exporter (torch 2.13) emits GatherND with int32 indices,
  which the ONNX checker rejects, and only targets opset 18.
- After export the graph is checked: ``onnx.checker`` (full), no op outside TensorRT's
  supported list, no node whose inputs are all constants (constant folding done).
- The debug outputs ``student_features`` and ``teacher_features_normalized`` (n, d) are off
  by default; they exist only in graphs exported with ``feature_outputs=True``.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from st3d_edge.errors import MissingExtraError
from st3d_edge.export.trt_supported_ops import RESTRICTIONS, unsupported_ops
from st3d_edge.io_utils import write_bytes_atomic
from st3d_edge.runtime.bundle import DEBUG_OUTPUT_NAMES, INPUT_NAMES, OUTPUT_NAME

OPSET = 17


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MissingExtraError("onnx", "train", "needed to export the scorer graph") from None
    return onnx


def build_fused_scorer(
    teacher, student, s, mu, sigma, k: int, *, precision: str = "fp32", feature_outputs: bool = False
):
    """The export module for a trained pair (``DescriptorNet``s or ``NetWeights``)."""
    from st3d_edge.export.fused_scorer import FusedScorer
    from st3d_edge.export.precision import torch_dtype
    from st3d_edge.export.weights import NetWeights, net_weights

    def weights(net):
        return net if isinstance(net, NetWeights) else net_weights(net)

    return FusedScorer(
        weights(teacher),
        weights(student),
        s,
        np.asarray(mu),
        np.asarray(sigma),
        k,
        feature_outputs=feature_outputs,
        dtype=torch_dtype(precision),
    ).eval()


def export_module(module, k: int, opset: int = OPSET, example_points: int = 64):
    """Trace ``module(points, knn)`` into an ONNX ModelProto with a dynamic point axis."""
    import torch

    onnx = _onnx()
    n = max(example_points, k + 1)
    points = torch.zeros(n, 3, dtype=torch.float32)
    points[:, 0] = torch.arange(n, dtype=torch.float32)  # distinct points: no 0/0 in tracing
    knn = (torch.arange(n, dtype=torch.int32)[:, None] + torch.arange(k, dtype=torch.int32)) % n
    feature_outputs = bool(getattr(module, "feature_outputs", False))
    outputs = [OUTPUT_NAME, *DEBUG_OUTPUT_NAMES] if feature_outputs else [OUTPUT_NAME]
    axes = {name: {0: "n"} for name in (*INPUT_NAMES, *outputs)}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module,
            (points, knn),
            buffer,
            input_names=list(INPUT_NAMES),
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def check_graph(model) -> None:
    """Raise ValueError if the graph breaks one of the checks listed in the module docstring."""
    onnx = _onnx()
    onnx.checker.check_model(model, full_check=True)
    bad = unsupported_ops(node.op_type for node in model.graph.node)
    if bad:
        raise ValueError(f"ops not supported by TensorRT's ONNX parser: {', '.join(bad)}")
    constant = constant_only_nodes(model)
    if constant:
        raise ValueError(f"nodes that do not depend on the inputs: {', '.join(constant)}")
    constants = _constant_names(model)
    for node in model.graph.node:
        if node.op_type in RESTRICTIONS and any(name not in constants for name in node.input[1:] if name):
            raise ValueError(f"{node.op_type} {node.name}: {RESTRICTIONS[node.op_type]} must be constants")


def _constant_names(model) -> set[str]:
    names = {init.name for init in model.graph.initializer}
    names |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    return names


def constant_only_nodes(model) -> list[str]:
    """Nodes other than Constant whose inputs are all constants (left-over constant folding)."""
    constants = _constant_names(model)
    found = []
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        inputs = [name for name in node.input if name]
        if all(name in constants for name in inputs):
            found.append(f"{node.op_type}({node.name})")
            constants |= set(node.output)
    return found


def op_histogram(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def export_scorer_onnx(
    teacher,
    student,
    s: float,
    mu,
    sigma,
    k: int,
    path: str | Path,
    *,
    precision: str = "fp32",
    feature_outputs: bool = False,
) -> Path:
    """Write the checked scorer graph of ``precision`` ("fp32" or "fp16") to ``path`` atomically."""
    model = scorer_graph(
        teacher, student, s, mu, sigma, k, precision=precision, feature_outputs=feature_outputs
    )
    return write_bytes_atomic(path, model.SerializeToString())


def scorer_graph(teacher, student, s, mu, sigma, k: int, *, precision="fp32", feature_outputs=False):
    """The checked scorer graph as an ONNX ModelProto (in memory)."""
    module = build_fused_scorer(
        teacher, student, s, mu, sigma, k, precision=precision, feature_outputs=feature_outputs
    )
    model = export_module(module, k)
    check_graph(model)
    return model
