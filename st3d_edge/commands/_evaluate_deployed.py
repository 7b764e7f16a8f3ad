"""`st3d-edge evaluate --model BUNDLE`: what is deployed, through the runtime pipeline (no torch).

The bundle's ONNX graphs (or its TensorRT engine) score the test split with the code ``infer``
runs, one row each (``st3d_edge.evaluation.deployed``); ``--with-torch`` adds the run folder's
PyTorch model through the same pipeline.
"""

from __future__ import annotations

from pathlib import Path

from st3d_edge.commands._common import BackendChoice, user_errors
from st3d_edge.commands.export import Precision
from st3d_edge.evaluation.maps import MAP_SIGMA


def evaluate_deployed(
    data: Path | None,
    model: Path,
    precisions: list[Precision] | None,
    backend: BackendChoice,
    with_torch: bool,
    workdir: Path,
    out: Path | None,
    categories: list[str] | None = None,
    map_sigma: float = MAP_SIGMA,
) -> None:
    """``evaluate --model``: one comparison table of the bundle's variants (and the PyTorch run)."""
    with user_errors():
        from st3d_edge.console import out as stdout
        from st3d_edge.console import wrote
        from st3d_edge.errors import St3dError, file_error
        from st3d_edge.evaluation import deployed
        from st3d_edge.evaluation.report import write_reports
        from st3d_edge.runtime.bundle import load_bundle

        if data is None:
            raise St3dError("evaluate --model needs the test scans as --data DIR (MVTec layout)")
        if not data.is_dir():
            raise file_error(data, "dataset root not found")
        bundle = load_bundle(model)
        if categories and categories != [bundle.category]:
            raise St3dError(
                f"{model} is a bundle of {bundle.category}; --category {', '.join(categories)} differs"
            )
        if backend == BackendChoice.auto:
            raise St3dError("evaluate --model takes --backend onnxruntime, numba or tensorrt, not auto")
        variants = [deployed.torch_variant(workdir / bundle.category)] if with_torch else []
        if backend == BackendChoice.tensorrt:
            variants.append(deployed.engine_variant(bundle))
        elif backend == BackendChoice.numba:
            variants.append(deployed.numba_variant(bundle))
        else:
            variants += deployed.onnx_variants(bundle, [p.value for p in precisions] if precisions else None)
        results = [deployed.evaluate_variant(data, bundle, v, map_sigma=map_sigma) for v in variants]
        stdout.print(
            f"{bundle.category} from {bundle.path} on {data} (runtime pipeline: {bundle.sampler}, kNN k = "
            f"{bundle.k}, n = {bundle.n}, IDW fill)",
            highlight=False,
        )
        stdout.print(deployed.comparison_table(results), highlight=False, markup=False)
        out_dir = out or bundle.path.parent / "evaluation-deployed"
        for result in results:
            stem = "-".join(result.method.replace("(", "").replace(")", "").split())
            for path in write_reports([result], out_dir, stem=stem):
                wrote(path)
