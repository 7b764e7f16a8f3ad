"""FP16 vs FP32 scorer graph on a trained synthetic category: score drift and metric change.

The FP16 graph (weights and activations FP16; division by s, geometric features,
normalisation, distance and output FP32) is what a TensorRT FP16 engine computes up to
kernel rounding. TensorRT cannot run here, so both graphs run in onnxruntime on the CPU.
Every variant scores the same sampled points and kNN graphs of the category's test split,
and the maps go through the same harmonic interpolation and metrics as ``st3d-edge evaluate``:

* PyTorch FP32 (the train side's Scorer, the reference);
* ONNX FP32 (the bundle's ``model.onnx``);
* ONNX FP16 (``model_fp16.onnx``).

It needs a trained category; the demo leaves one behind:

    st3d-edge demo && python benchmarks/precision.py --data st3d-demo/data --run st3d-demo/runs/tire
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("st3d-demo/data"))
    parser.add_argument("--run", type=Path, default=Path("st3d-demo/runs/tire"))
    parser.add_argument("--category", default=None, help="default: the run folder's name")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from st3d_edge.data.mvtec import read_scan, scan_paths
    from st3d_edge.evaluation.runner import ModelPointScorer, evaluate_scans
    from st3d_edge.export.onnx_graph import scorer_graph
    from st3d_edge.export.parity import onnx_session, relative_error, run_session
    from st3d_edge.train.category_model import load_category

    torch.set_num_threads(args.threads)
    category = args.category or args.run.name
    scans = [read_scan(p) for p in scan_paths(args.data, category, "test")]
    reference = ModelPointScorer(args.run)
    teacher, student, s, mu, sigma, preset = load_category(args.run)
    k = preset.model.k
    sessions = {
        precision: onnx_session(
            scorer_graph(teacher, student, s, mu, sigma, k, precision=precision).SerializeToString(),
            threads=args.threads,
        )
        for precision in ("fp32", "fp16")
    }

    # Sample once per scan so every variant scores exactly the same points.
    sampled = {}

    def torch_scorer(points):
        idx, knn, scores = reference(points)
        sampled[id(points)] = (idx, knn, scores)
        return idx, knn, scores

    drift = {"fp32": [], "fp16": []}

    def onnx_scorer(precision):
        def score(points):
            idx, knn, ref = sampled[id(points)]
            scores = run_session(sessions[precision], points[idx], knn)
            drift[precision].append(relative_error(scores, ref))
            return idx, knn, scores

        return score

    results = {"PyTorch FP32": evaluate_scans(scans, torch_scorer, category=category, progress=False)}
    for precision, name in (("fp32", "ONNX FP32"), ("fp16", "ONNX FP16")):
        results[name] = evaluate_scans(scans, onnx_scorer(precision), category=category, progress=False)

    print(f"category {category}: {len(scans)} synthetic test scans, n = {preset.model.n}, k = {k}")
    print(f"{'variant':<14} {'AU-PRO@0.3':>10} {'I-AUROC':>8} {'max rel. drift vs PyTorch':>26}")
    for name, result in results.items():
        key = {"ONNX FP32": "fp32", "ONNX FP16": "fp16"}.get(name)
        d = f"{max(drift[key]):.2e}" if key else "reference"
        print(f"{name:<14} {result.au_pro[0.3]:>10.4f} {result.i_auroc:>8.4f} {d:>26}")
    change = results["ONNX FP16"].au_pro[0.3] - results["ONNX FP32"].au_pro[0.3]
    print(f"AU-PRO@0.3 change FP16 - FP32: {change:+.2e}; mean FP16 drift {np.mean(drift['fp16']):.2e}")


if __name__ == "__main__":
    main()
