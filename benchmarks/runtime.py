"""Edge runtime latency per stage: onnxruntime (CPU) against PyTorch eager (CPU), same process.

One synthetic 800 x 800 scan (category tire, one dent), n = 64000, k = 32, d = 64. The model is
a *randomly initialised* teacher/student pair (seeded), exported through st3d_edge.export to
ONNX: the timing of a network does not depend on its weights, and this keeps the benchmark
independent of a trained run. Both columns use the same pipeline (read, FPS, kNN, fill, image
score on the CPU geometry); only the inference backend differs. PyTorch eager is the train
side's ``Scorer`` on the same teacher, student, s, mu and sigma.

    python benchmarks/runtime.py [--repeats 5] [--warmup 1] [--threads 2] [--size 800]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

N, K, D = 64000, 32, 64


def make_bundle(folder: Path, scan_points: np.ndarray, threads: int):
    """A random-weight bundle (and the matching torch modules) for n, k, d above."""
    import torch

    from st3d_edge.export.onnx_graph import export_scorer_onnx
    from st3d_edge.geometry.knn import knn_indices
    from st3d_edge.geometry.sampling import sample_indices
    from st3d_edge.geometry.scale import knn_distance_sum, scale_s
    from st3d_edge.model.network import DescriptorNet
    from st3d_edge.runtime.bundle import write_manifest

    torch.manual_seed(0)
    teacher, student = DescriptorNet(d=D).eval(), DescriptorNet(d=D).eval()
    sample = scan_points[sample_indices(scan_points, N)]
    s = scale_s([knn_distance_sum(sample, knn_indices(sample, K, workers=threads))])
    mu, sigma = np.zeros(D, np.float32), np.ones(D, np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    export_scorer_onnx(teacher, student, s, mu, sigma, K, folder / "model.onnx")
    write_manifest(
        folder,
        category="tire",
        n=N,
        k=K,
        d=D,
        s=s,
        sampler="fps",
        precision="fp32",
        models={"fp32": "model.onnx"},
        thresholds={},
        image_score={},
        versions={},
    )
    return teacher, student, s, mu, sigma


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=800)
    args = parser.parse_args()

    import torch

    from st3d_edge.commands.bench import TorchScorerBackend, format_table, synthesize_scan, time_scorer
    from st3d_edge.data.mvtec import read_scan
    from st3d_edge.model.scorer import Scorer
    from st3d_edge.runtime.backends import OnnxRuntimeBackend
    from st3d_edge.runtime.bundle import load_bundle
    from st3d_edge.runtime.geometry_backend import CpuGeometry
    from st3d_edge.runtime.memory import peak_host_rss_mb
    from st3d_edge.runtime.pipeline import ScanScorer
    from st3d_edge.runtime.timing import summarize_runs

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="st3d-runtime-bench-") as tmp:
        tmp = Path(tmp)
        scan_path = synthesize_scan(tmp / "data", "tire", args.size)
        scan = read_scan(scan_path)
        teacher, student, s, mu, sigma = make_bundle(tmp / "bundle", scan.points, args.threads)
        bundle = load_bundle(tmp / "bundle")
        geometry = CpuGeometry(workers=args.threads)
        ort = ScanScorer(bundle, OnnxRuntimeBackend(bundle.onnx_path(), threads=args.threads), geometry)
        first = ort.score_file(scan_path)
        edge = summarize_runs(time_scorer(ort, scan_path, args.repeats, args.warmup))
        rss_edge = peak_host_rss_mb()
        eager = ScanScorer(bundle, TorchScorerBackend(Scorer(teacher, student, s, mu, sigma)), geometry)
        baseline = summarize_runs(time_scorer(eager, scan_path, args.repeats, args.warmup))
        # the same scores from both backends, so the timing compares equal work
        check = eager.score_file(scan_path)
        drift = float(np.max(np.abs(check.point_scores - first.point_scores)) / np.max(first.point_scores))

    print(
        f"scan {args.size}x{args.size}: {first.valid_points} valid points -> n = {first.sampled_points}, "
        f"k = {K}, d = {D} (random weights); {args.repeats} runs after {args.warmup} warm-up; "
        f"{args.threads} threads; torch {torch.__version__}"
    )
    print(format_table(edge, "onnxruntime-cpu", baseline, "pytorch-eager"))
    print(
        f"scans/s: onnxruntime {1000 / edge['total']['median']:.2f}, "
        f"pytorch {1000 / baseline['total']['median']:.2f}"
    )
    print(
        f"peak host RSS after the onnxruntime runs: {rss_edge:.0f} MiB; "
        f"after both: {peak_host_rss_mb():.0f} MiB"
    )
    print(f"max relative difference of the pixel scores, pytorch vs onnxruntime: {drift:.2e}")


if __name__ == "__main__":
    main()
