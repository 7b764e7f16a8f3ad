"""Where onnxruntime spends its time on the exported scorer graph: a table per op type.

A randomly initialised teacher/student pair exported as ``st3d-edge export`` does (n is
dynamic), run on a synthetic curved patch of n points with its kNN graph, ``--repeats`` times
after one warm-up with onnxruntime's profiler on; the table sums each op type's kernel time
over the profiled runs and divides by their number. Also prints the peak host RSS.

    python benchmarks/onnx_profile.py [--n 64000] [--k 32] [--d 64] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64000)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import onnxruntime as ort
    import torch
    from gpu_scorer import patch  # benchmarks/ is on the path when run as a script

    from st3d_edge.export.onnx_graph import export_scorer_onnx
    from st3d_edge.geometry.knn import knn_indices
    from st3d_edge.model.network import DescriptorNet
    from st3d_edge.runtime.memory import peak_host_rss_mb

    torch.manual_seed(0)
    d = args.d
    with tempfile.TemporaryDirectory(prefix="st3d-onnx-profile-") as tmp:
        model = export_scorer_onnx(
            DescriptorNet(d=d), DescriptorNet(d=d), 1.0, np.zeros(d), np.ones(d), args.k, Path(tmp) / "m.onnx"
        )
        points = patch(args.n)
        knn = knn_indices(points, args.k).astype(np.int32)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        before = peak_host_rss_mb()
        for _ in range(1 + args.repeats):
            session.run(None, {"points": points, "knn": knn})
        events = json.loads(Path(session.end_profiling()).read_text())
    runs = [e for e in events if e.get("name") == "model_run"]
    per_op: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            per_op[op] = per_op.get(op, 0.0) + event["dur"] / 1000.0  # us -> ms
    total = sum(per_op.values())
    count = max(1, len(runs))
    print(f"n = {args.n}, k = {args.k}, d = {d}, {args.threads} threads; {count} runs (first: warm-up)")
    print(f"{'op':<16}{'ms per run':>12}{'share':>8}")
    for op, ms in sorted(per_op.items(), key=lambda item: -item[1]):
        print(f"{op:<16}{ms / count:>12.1f}{100 * ms / total:>7.1f}%")
    print(f"model_run median {np.median([e['dur'] / 1000.0 for e in runs]):.0f} ms")
    print(f"peak host RSS {peak_host_rss_mb():.0f} MiB ({before:.0f} before the first run)")


if __name__ == "__main__":
    main()
