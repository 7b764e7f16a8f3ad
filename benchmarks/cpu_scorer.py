"""The numba CPU scorer's dense layers: split into each network's parts against the whole matrices.

One process, one randomly initialised teacher/student pair exported to ONNX (n = 64000, k = 32,
d = 64 as benchmarks/runtime.py; timing does not depend on the weights), points on a wavy surface
patch at unit-ish spacing. The graph is exported in a child process: torch's OpenMP runtime in
this one would put numba's kernels and OpenBLAS on one OpenMP pool, as the edge never does.
Both variants run the same kernels on the same inputs, interleaved, so their ratio is measured
under the same load; the split one is what ships
(:mod:`st3d_edge.runtime.block_dense`), the whole-matrix one is its reference (one part per
matrix: every product, zeros included).

    python benchmarks/cpu_scorer.py [--n 64000] [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

K, D = 32, 64


def whole(weight: np.ndarray):
    """``weight`` as a single part: the plain product, zeros included."""
    from st3d_edge.runtime.block_dense import BlockDense

    weight = np.asarray(weight, dtype=np.float32)
    rows, cols = weight.shape

    def span(size: int) -> np.ndarray:
        return np.array([0, size], dtype=np.int64)

    return BlockDense(
        rows,
        cols,
        np.arange(rows, dtype=np.int32),
        span(rows),
        np.arange(cols, dtype=np.int32),
        span(cols),
        weight.ravel().copy(),
        span(rows * cols),
    )


def export_random_graph(path: Path) -> None:
    import torch

    from st3d_edge.export.onnx_graph import export_scorer_onnx
    from st3d_edge.model.network import DescriptorNet

    torch.manual_seed(0)
    teacher, student = DescriptorNet(d=D).eval(), DescriptorNet(d=D).eval()
    mu, sigma = np.zeros(D, np.float32), np.ones(D, np.float32)
    export_scorer_onnx(teacher, student, 1.0, mu, sigma, K, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--export", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export:
        export_random_graph(args.export)
        return

    import numba

    from st3d_edge.geometry.knn import knn_indices
    from st3d_edge.runtime.cpu_scorer import read_graph_weights, score

    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    side = np.sqrt(args.n)
    u, v = rng.uniform(0, side, (2, args.n))
    points = np.stack([u, v, 2.0 * np.sin(u / 9.0) * np.cos(v / 7.0)], axis=1).astype(np.float32)
    knn = knn_indices(points, K)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        subprocess.run([sys.executable, __file__, "--export", str(path)], check=True)
        split = read_graph_weights(path)
    reference = copy.copy(split)
    reference.__dict__["split"] = {name: whole(w) for name, w in split.dense_matrices().items()}

    a, b = score(split, points, knn), score(reference, points, knn)  # also compiles
    drift = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
    times = {"split": [], "whole": []}
    for _ in range(args.repeats):
        for name, weights in (("split", split), ("whole", reference)):
            start = time.perf_counter()
            score(weights, points, knn)
            times[name].append(time.perf_counter() - start)
    ratio = np.array(times["split"]) / np.array(times["whole"])
    print(f"numba CPU scorer, n = {args.n}, k = {K}, d = {D}, {args.threads} threads, {args.repeats} repeats")
    for name, values in times.items():
        values = np.array(values) * 1000
        print(
            f"  {name:6} median {np.median(values):7.1f} ms  min {values.min():7.1f}  max {values.max():7.1f}"
        )
    print(f"  split / whole: median {np.median(ratio):.3f} (min {ratio.min():.3f}, max {ratio.max():.3f})")
    print(f"  max relative difference of the scores: {drift:.2e}")


if __name__ == "__main__":
    main()
