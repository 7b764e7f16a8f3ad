"""CPU geometry: FPS and kNN for 64000 of 300000 surface points, k = 32.

Rows (median and p90 over repeats, one process, so ratios compare like with like):

* FPS: fpsample's bucket FPS (the ``fps`` sampler) on the full cloud; the exact numpy
  reference timed on a cloud ``--shrink`` times smaller in both N and n and extrapolated
  by its O(N n) cost; bucket FPS on that same small cloud, for a measured ratio too;
  the tiled sampler (``fps-tiled``) with its covering radius relative to exact FPS.
* kNN of the 64000 sampled points: cKDTree on all cores; the brute-force reference on the
  first ``--brute-points`` of them, extrapolated by its O(N^2) cost.
* The IDW fill of all 300000 points from the 64000 sampled scores (the runtime's last stage).

The cloud is a synthetic scan-like height field (10 cm square, waves and a bump, 10 % of
pixels missing, 20 micrometre noise).

    python benchmarks/geometry.py [--points 300000] [--samples 64000] [--k 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def height_field(n_points: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_points / 0.9)))
    u, v = np.meshgrid(np.linspace(0, 0.1, side), np.linspace(0, 0.1, side), indexing="ij")
    bump = 0.02 * np.exp(-((u - 0.05) ** 2 + (v - 0.04) ** 2) / 0.0004)
    z = 0.01 * np.sin(40 * u) * np.cos(30 * v) + bump
    grid = np.stack([u, v, z], axis=-1).reshape(-1, 3)
    keep = np.sort(rng.permutation(len(grid))[:n_points])
    return (grid[keep] + rng.normal(0.0, 2e-5, (n_points, 3))).astype(np.float32)


def timed(fn, repeats: int) -> tuple[np.ndarray, object]:
    """Seconds of ``repeats`` calls (after one warm-up call) and the last result."""
    result = fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return np.array(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=300_000)
    parser.add_argument("--samples", type=int, default=64_000)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shrink", type=int, default=10, help="exact FPS runs on N/shrink, n/shrink")
    parser.add_argument("--brute-points", type=int, default=8000, help="cloud size of brute-force kNN")
    args = parser.parse_args()

    from st3d_edge.geometry.fill import idw_fill
    from st3d_edge.geometry.fps import fps_bucket, fps_exact
    from st3d_edge.geometry.knn import knn_bruteforce, knn_indices
    from st3d_edge.geometry.sampling import covering_radius
    from st3d_edge.geometry.tiles import fps_tiled

    cloud = height_field(args.points)
    n, k, reps = args.samples, args.k, args.repeats
    small = height_field(args.points // args.shrink, seed=1)
    small_n = n // args.shrink
    cost_ratio = (len(cloud) * n) / (len(small) * small_n)
    # name, seconds, extrapolation factor, baseline row (for the ratio) or "", note
    rows: list[tuple[str, np.ndarray, float, str, str]] = []

    bucket_s, picked = timed(lambda: fps_bucket(cloud, n), reps)
    fps_base = f"FPS bucket (fpsample) {n}/{len(cloud)}"
    rows.append((fps_base, bucket_s, 1.0, "", "baseline"))
    exact_small, _ = timed(lambda: fps_exact(small, small_n), max(1, reps // 2))
    note = f"extrapolated x{cost_ratio:.0f} from {small_n}/{len(small)}"
    rows.append((f"FPS exact (numpy) {n}/{len(cloud)}", exact_small, cost_ratio, fps_base, note))
    bucket_small, _ = timed(lambda: fps_bucket(small, small_n), reps)
    small_base = f"FPS bucket {small_n}/{len(small)}"
    rows.append((small_base, bucket_small, 1.0, "", "baseline of the next row"))
    rows.append((f"FPS exact (numpy) {small_n}/{len(small)}", exact_small, 1.0, small_base, "measured"))
    tiled_s, tiled = timed(lambda: fps_tiled(cloud, n), max(1, reps // 2))
    factor = covering_radius(cloud, tiled) / covering_radius(cloud, picked)
    note = f"covering radius {factor:.3f} x exact FPS"
    rows.append((f"FPS tiled {n}/{len(cloud)}", tiled_s, 1.0, fps_base, note))

    sampled = cloud[picked]
    tree_s, _ = timed(lambda: knn_indices(sampled, k), reps)
    knn_base = f"kNN cKDTree k={k} on {n} (workers=-1)"
    rows.append((knn_base, tree_s, 1.0, "", "baseline"))
    subset = min(args.brute_points, n)
    brute_s, _ = timed(lambda: knn_bruteforce(sampled[:subset], k, chunk=256), max(1, reps // 2))
    scale = (n / subset) ** 2
    note = f"extrapolated x{scale:.0f} (O(N^2)) from {subset} points"
    rows.append((f"kNN brute force k={k} on {n}", brute_s, scale, knn_base, note))

    scores = np.random.default_rng(0).random(n)
    fill_s, _ = timed(lambda: idw_fill(sampled, scores, cloud), reps)
    rows.append((f"IDW fill {len(cloud)} from {n} (4 nn)", fill_s, 1.0, "", ""))

    print(f"CPU geometry, {os.cpu_count()} logical CPUs, {reps} repeats (median, p90)")
    print(f"{'stage':44} {'median s':>10} {'p90 s':>10} {'ratio':>9}  note")
    medians = {name: np.median(seconds) * scale for name, seconds, scale, _, _ in rows}
    for name, seconds, scale, base, note in rows:
        median, p90 = medians[name], np.percentile(seconds, 90) * scale
        ratio = f"{median / medians[base]:8.1f}x" if base else f"{'':9}"
        print(f"{name:44} {median:10.3f} {p90:10.3f} {ratio}  {note}")


if __name__ == "__main__":
    main()
