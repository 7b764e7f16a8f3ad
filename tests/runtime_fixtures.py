"""Small stand-ins the runtime tests share (no tests here).

The toy scorer graph has the exported scorer's interface (``points (n,3) float32, knn (n,k)
int32 -> scores (n,)``) and an obvious numpy reference: the distance of each point to the mean
of its kNN neighbourhood, divided by s. It lets the runtime be tested before, and independent
of, the trained model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TOY_S = 0.5


def toy_scores_reference(points: np.ndarray, knn: np.ndarray, s: float = TOY_S) -> np.ndarray:
    """Loop-per-point reference of the toy graph."""
    out = np.empty(len(points), dtype=np.float64)
    for i in range(len(points)):
        centre = points[knn[i]].astype(np.float64).mean(axis=0)
        out[i] = np.sqrt(((points[i] - centre) ** 2).sum()) / s
    return out.astype(np.float32)


def write_toy_scorer(path: Path, k: int, s: float = TOY_S) -> Path:
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Gather", ["points", "knn"], ["neigh"], axis=0),  # (n, k, 3)
        helper.make_node("ReduceMean", ["neigh", "axis1"], ["centre"], keepdims=0),
        helper.make_node("Sub", ["points", "centre"], ["diff"]),
        helper.make_node("Mul", ["diff", "diff"], ["sq"]),
        helper.make_node("ReduceSum", ["sq", "axis1"], ["sumsq"], keepdims=0),
        helper.make_node("Sqrt", ["sumsq"], ["dist"]),
        helper.make_node("Div", ["dist", "s"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "toy_scorer",
        [
            helper.make_tensor_value_info("points", TensorProto.FLOAT, ["n", 3]),
            helper.make_tensor_value_info("knn", TensorProto.INT32, ["n", k]),
        ],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n"])],
        initializer=[
            helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
            helper.make_tensor("s", TensorProto.FLOAT, [], [s]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@dataclass
class ToyBundle:
    """The bundle fields the pipeline reads, without a manifest."""

    n: int
    k: int
    sampler: str = "fps"
    thresholds: dict = field(default_factory=dict)
    image_score: dict = field(default_factory=dict)


@dataclass
class ToyScan:
    path: Path
    valid: np.ndarray
    points: np.ndarray
    pixels: np.ndarray


def organized_cloud(height: int, width: int, seed: int = 0, bump: bool = True) -> np.ndarray:
    """An H x W x 3 organized cloud: a wavy surface, a bump (the 'defect'), a few invalid pixels."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = xs / width, ys / height
    z = 0.05 * np.sin(6 * x) * np.cos(4 * y) + 0.002 * rng.standard_normal(x.shape)
    if bump:
        z += 0.08 * np.exp(-((x - 0.7) ** 2 + (y - 0.3) ** 2) / 0.004)
    xyz = np.stack([x, y, z], axis=-1).astype(np.float32)
    xyz[rng.random((height, width)) < 0.05] = 0.0  # sensor dropouts
    xyz[:, :2] = 0.0  # a dead border, as on real scanners
    return xyz


def toy_scan(xyz: np.ndarray, path: Path = Path("scan.tiff")) -> ToyScan:
    valid = np.any(xyz != 0, axis=-1) & np.all(np.isfinite(xyz), axis=-1)
    pixels = np.argwhere(valid).astype(np.int32)
    return ToyScan(path=path, valid=valid, points=xyz[valid].astype(np.float32), pixels=pixels)
