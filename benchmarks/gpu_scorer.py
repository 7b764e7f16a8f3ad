"""The scorer network (teacher + student + eq. 6) in PyTorch on a CUDA GPU, FP32 and FP16.

n = 64000 points of a synthetic curved patch (unit neighbour spacing, as after dividing by
s), k = 32, d = 64, randomly initialised weights (timing does not depend on them). FP16 is
``torch.autocast`` over the whole forward pass; its scores are compared with FP32's (max
relative difference). Each cell is the median and p90 over ``--repeats`` runs after
``--warmup``, with a device synchronisation around each run; the peak device memory is
``torch.cuda.max_memory_allocated``. Without a CUDA GPU it says so and writes ``gpu: null``
(the dry run of benchmarks/gpu.sh on a CPU machine).

    python benchmarks/gpu_scorer.py [--n 64000] [--k 32] [--d 64] [--repeats 10] [--json F]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def patch(n: int, seed: int = 0) -> np.ndarray:
    side = int(np.ceil(np.sqrt(n)))
    u, v = np.meshgrid(np.arange(side, dtype=np.float64), np.arange(side, dtype=np.float64))
    z = 3.0 * np.sin(u / 15.0) * np.cos(v / 11.0)
    cloud = np.stack([u, v, z], axis=-1).reshape(-1, 3)[:n]
    return (cloud + np.random.default_rng(seed).normal(0, 0.05, cloud.shape)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64000)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    import torch

    from st3d_edge.geometry.knn import knn_indices
    from st3d_edge.model.network import DescriptorNet
    from st3d_edge.model.scorer import Scorer

    result: dict = {"gpu": None, "n": args.n, "k": args.k, "d": args.d, "torch": torch.__version__}
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to time")
    else:
        device = torch.device("cuda")
        result["gpu"] = torch.cuda.get_device_name(device)
        torch.manual_seed(0)
        teacher, student = DescriptorNet(d=args.d), DescriptorNet(d=args.d)
        mu, sigma = np.zeros(args.d, np.float32), np.ones(args.d, np.float32)
        scorer = Scorer(teacher, student, 1.0, mu, sigma).to(device).eval()
        cloud = patch(args.n)
        points = torch.from_numpy(cloud).to(device)
        knn = torch.from_numpy(knn_indices(cloud, args.k).astype(np.int64)).to(device)
        scores = {}
        for precision in ("fp32", "fp16"):
            torch.cuda.reset_peak_memory_stats(device)
            times = []
            for i in range(args.warmup + args.repeats):
                torch.cuda.synchronize(device)
                start = time.perf_counter()
                with (
                    torch.inference_mode(),
                    torch.autocast("cuda", torch.float16, enabled=precision == "fp16"),
                ):
                    out = scorer(points, knn)
                torch.cuda.synchronize(device)
                if i >= args.warmup:
                    times.append(1000.0 * (time.perf_counter() - start))
            scores[precision] = out.float().cpu().numpy()
            result[precision] = {
                "median_ms": float(np.median(times)),
                "p90_ms": float(np.percentile(times, 90)),
                "peak_device_mb": torch.cuda.max_memory_allocated(device) / 2**20,
            }
        result["fp16_max_relative_difference"] = float(
            np.max(np.abs(scores["fp16"] - scores["fp32"])) / np.max(np.abs(scores["fp32"]))
        )
        print(f"{result['gpu']}: n = {args.n}, k = {args.k}, d = {args.d}")
        for precision in ("fp32", "fp16"):
            r = result[precision]
            print(
                f"  {precision}: {r['median_ms']:.2f} ms median, {r['p90_ms']:.2f} p90, "
                f"{r['peak_device_mb']:.0f} MiB"
            )
        print(f"  FP16 vs FP32 max relative difference {result['fp16_max_relative_difference']:.2e}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
