"""ONNX operators that TensorRT's ONNX parser supports, for a test that checks the scorer graph.

Source: the operator support matrix of the onnx-tensorrt project (``docs/operators.md``),
read for TensorRT 8.5 (opset <= 17) and TensorRT 10.15 (opsets 9-24). The set below holds only
operators marked supported in *both* tables, so an op in it is supported by every release in
between, including TensorRT 10.3 that JetPack 6 ships. Restrictions from the matrix that
matter for the scorer graph are in :data:`RESTRICTIONS`; the graph tests check them too.

Deliberately left out although listed as supported somewhere: operators supported only in
later releases (e.g. Attention, RMSNormalization, LayerNormalization, Gelu, Mish), so that a
graph that passes here also parses on a Jetson with TensorRT 10.3.
"""

from __future__ import annotations

TRT_SUPPORTED_ONNX_OPS = frozenset(
    {
        # element-wise arithmetic and math
        "Abs", "Acos", "Acosh", "Add", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Cos", "Cosh",
        "Div", "Erf", "Exp", "Floor", "Log", "Max", "Mean", "Min", "Mod", "Mul", "Neg", "Pow",
        "Reciprocal", "Round", "Sign", "Sin", "Sinh", "Sqrt", "Sub", "Sum", "Tan", "Tanh",
        # comparisons and logic
        "And", "Equal", "Greater", "GreaterOrEqual", "IsNaN", "Less", "LessOrEqual", "Not", "Or",
        "Where", "Xor",
        # activations
        "Celu", "Clip", "Elu", "HardSigmoid", "HardSwish", "LeakyRelu", "LogSoftmax", "PRelu",
        "Relu", "Selu", "Sigmoid", "Softmax", "Softplus", "Softsign", "ThresholdedRelu",
        # linear algebra, convolution, pooling, normalisation
        "AveragePool", "BatchNormalization", "Conv", "ConvTranspose", "Einsum", "Gemm",
        "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "InstanceNormalization",
        "LpNormalization", "LpPool", "LRN", "MatMul", "MaxPool",
        # reductions
        "ArgMax", "ArgMin", "CumSum", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
        "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "TopK",
        # shape, indexing and data movement
        "Cast", "Concat", "Constant", "ConstantOfShape", "DepthToSpace", "Expand", "EyeLike",
        "Flatten", "Gather", "GatherElements", "GatherND", "Identity", "OneHot", "Pad", "Range",
        "Reshape", "Resize", "Scatter", "ScatterElements", "ScatterND", "Shape", "Size", "Slice",
        "SpaceToDepth", "Split", "Squeeze", "Tile", "Transpose", "Trilu", "Unsqueeze", "Upsample",
        # control flow
        "If", "Loop", "Scan",
    }
)  # fmt: skip

# Restrictions of the support matrix ("axes must be an initializer", TopK's K, ...) on
# operators a scorer graph may use, applied here in their strictest form: every input after
# the data input must be a constant (an initializer or a Constant node), not computed at run
# time. This also keeps Reshape and Slice shapes static apart from the dynamic point axis.
RESTRICTIONS = {
    "ReduceMean": "axes",
    "ReduceSum": "axes",
    "ReduceSumSquare": "axes",
    "ReduceL2": "axes",
    "ReduceMax": "axes",
    "Squeeze": "axes",
    "Unsqueeze": "axes",
    "Slice": "starts, ends, axes and steps",
    "Reshape": "the target shape",
    "TopK": "K",
}

# TensorRT 10's parser covers opsets 9 to 20 and later releases extend the upper end; the
# scorer graph pins an opset inside the range every supported release accepts.
MIN_OPSET = 9
MAX_OPSET_TRT_10_3 = 20


def unsupported_ops(op_types) -> list[str]:
    """The op types among ``op_types`` that are not on the supported list, sorted."""
    return sorted(set(op_types) - TRT_SUPPORTED_ONNX_OPS)
