"""Descriptor network on the CPU: the gather reference against the fast training formulation.

One synthetic curved patch of n points with about unit neighbour spacing (as after dividing
by s), its kNN graph (self first), and one seeded DescriptorNet. Three formulations with the
same parameters, timed in the same process:

* ``reference``: ``network.reference_forward`` (gather (n, k, c), concatenate, average);
* ``fast/torch``: ``DescriptorNet.forward`` with the chunked torch geometric pooling;
* ``fast/numba``: ``DescriptorNet.forward`` with the Numba geometric pooling (the default
  on the CPU).

"forward" runs under ``torch.no_grad``; "fwd+bwd" is a training step's network part (forward
with autograd, backward of a loss over all descriptors). Peak memory is the highest resident
set size (psutil, polled every 2 ms) above the level before the first run, each
formulation and pass measured in a fresh process.

    python benchmarks/model_forward.py [--n 16384] [--d 64] [--k 32] [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time

import numpy as np


def make_cloud(n: int, k: int, seed: int = 0):
    import torch
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    side = np.sqrt(n)
    uv = rng.uniform(0, side, (n, 2))
    z = 1.5 * np.sin(uv[:, 0] / 2.0) * np.cos(uv[:, 1] / 3.0)
    points = np.column_stack([uv, z]).astype(np.float32)
    _, knn = cKDTree(points).query(points, k)
    knn[:, 0] = np.arange(n)
    return torch.from_numpy(points), torch.from_numpy(knn.astype(np.int64))


class PeakRss:
    """Highest RSS above the starting level while the block runs, in MiB."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.peak_mib = 0.0

    def __enter__(self):
        self._start = self._process.memory_info().rss
        self._peak = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.peak_mib = (self._peak - self._start) / 2**20


def measure(fn, repeats: int, warmup: int) -> tuple[list[float], float]:
    """Seconds per run, and the peak RSS above the level before the first run (MiB)."""
    times = []
    with PeakRss() as rss:
        for _ in range(warmup):
            fn()
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return times, rss.peak_mib


FORMULATIONS = ("reference", "fast/torch", "fast/numba")
PASSES = ("forward", "fwd+bwd")


def run_one(args, formulation: str, which: str) -> tuple[list[float], float]:
    import torch

    from st3d_edge.model.network import DescriptorNet, reference_forward

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    points, knn = make_cloud(args.n, args.k)
    net = DescriptorNet(d=args.d)
    upstream = torch.randn(args.n, args.d) / args.n
    if formulation == "reference":

        def form():
            return reference_forward(net, points, knn)
    else:
        pooling = formulation.split("/")[1]

        def form():
            return net(points, knn, pooling=pooling)

    def forward_only():
        with torch.no_grad():
            form()

    def forward_backward():
        net.zero_grad(set_to_none=True)
        (form() * upstream).sum().backward()

    return measure(forward_only if which == "forward" else forward_backward, args.repeats, args.warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16384)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--one", nargs=2, metavar=("FORMULATION", "PASS"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        times, peak = run_one(args, *args.one)
        print(json.dumps({"times": times, "peak_mib": peak}))
        return

    # Each measurement runs in a fresh process, so that the peak memory of one formulation
    # is not hidden by memory the allocator kept from another.
    import torch

    print(
        f"DescriptorNet on the CPU: n={args.n} d={args.d} k={args.k} threads={args.threads} "
        f"repeats={args.repeats} after {args.warmup} warm-up (torch {torch.__version__})"
    )
    header = f"{'formulation':<12} {'pass':<8} {'median s':>9} {'p90 s':>8} {'vs ref':>7} {'peak MiB':>9}"
    print(header)
    print("-" * len(header))
    for which in PASSES:
        baseline = None
        for formulation in FORMULATIONS:
            command = [sys.executable, __file__, "--one", formulation, which]
            for name in ("n", "d", "k", "threads", "repeats", "warmup"):
                command += [f"--{name}", str(getattr(args, name))]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            times = result["times"]
            median, p90 = float(np.median(times)), float(np.percentile(times, 90))
            baseline = baseline or median
            print(
                f"{formulation:<12} {which:<8} {median:9.3f} {p90:8.3f} {baseline / median:6.2f}x "
                f"{result['peak_mib']:9.0f}"
            )


if __name__ == "__main__":
    main()
