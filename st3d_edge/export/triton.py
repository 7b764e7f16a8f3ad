"""A Triton Inference Server model repository for the scorer, for one GPU server serving many scanners.

Layout (inside the bundle folder, so it is written and replaced atomically with it)::

    triton/
      st3d_<category>/
        config.pbtxt
        1/model.onnx     platform "onnxruntime_onnx" (bundle without an engine)
        1/model.plan     platform "tensorrt_plan"    (bundle with an engine: a copy of it)

Decisions: ``max_batch_size: 0`` because the point axis n is the only dynamic axis and one
request is one scan (its sampled points and their kNN indices); n is ``-1`` in the dims, k is
fixed. The inputs and output are FP32 / INT32 whatever the graph's internal precision. An
engine is only valid on the GPU model and TensorRT version it was built with, so the
``tensorrt_plan`` layout is meant to be exported on the serving machine itself. The
repository is not listed in the manifest (the edge runtime does not read it).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from st3d_edge.runtime.bundle import DEBUG_OUTPUT_NAMES

TRITON_DIR = "triton"


def model_name(category: str) -> str:
    """A Triton model name for ``category`` (letters, digits, '_' and '-' only)."""
    return "st3d_" + re.sub(r"[^A-Za-z0-9_-]+", "_", category)


def config_pbtxt(name: str, platform: str, k: int, d: int, feature_outputs: bool = False) -> str:
    """The text of config.pbtxt for the scorer (protobuf text format)."""
    if platform not in ("onnxruntime_onnx", "tensorrt_plan"):
        raise ValueError(f"unknown Triton platform {platform!r}")
    outputs = [("scores", "TYPE_FP32", "[ -1 ]")]
    if feature_outputs:
        outputs += [(out, "TYPE_FP32", f"[ -1, {d} ]") for out in DEBUG_OUTPUT_NAMES]
    lines = [
        f'name: "{name}"',
        f'platform: "{platform}"',
        "max_batch_size: 0",
        "input [",
        '  { name: "points" data_type: TYPE_FP32 dims: [ -1, 3 ] },',
        f'  {{ name: "knn" data_type: TYPE_INT32 dims: [ -1, {k} ] }}',
        "]",
        "output [",
        ",\n".join(f'  {{ name: "{out}" data_type: {dtype} dims: {dims} }}' for out, dtype, dims in outputs),
        "]",
        "instance_group [ { kind: KIND_GPU count: 1 } ]",
        "",
    ]
    return "\n".join(lines)


def write_triton_repository(
    bundle_dir: str | Path,
    *,
    category: str,
    k: int,
    d: int,
    onnx_file: str,
    engine_file: str | None = None,
    feature_outputs: bool = False,
) -> Path:
    """Lay out ``bundle_dir/triton/st3d_<category>`` from the bundle's files; return that folder."""
    bundle_dir = Path(bundle_dir)
    name = model_name(category)
    model_dir = bundle_dir / TRITON_DIR / name
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    if engine_file:
        platform = "tensorrt_plan"
        shutil.copyfile(bundle_dir / engine_file, version_dir / "model.plan")
    else:
        platform = "onnxruntime_onnx"
        shutil.copyfile(bundle_dir / onnx_file, version_dir / "model.onnx")
    (model_dir / "config.pbtxt").write_text(config_pbtxt(name, platform, k, d, feature_outputs))
    return model_dir
