"""CPU geometry: FPS and kNN for 64000 of 300000 surface points, k = 32.

Rows (median and p90 over repeats, one process, so ratios compare like with like):

* FPS: fpsample's bucket FPS (the ``fps`` sampler without numba) on the full cloud; the grid FPS
  (``fps`` with numba; exact FPS too, from another first point: the tests compare it with the
  numpy reference); bucket FPS at the previous bucket height 7; bucket FPS after a voxel-grid
  pre-reduction to 2n and 4n points (not a sampler: the covering radius it costs is printed,
  for the record); the exact numpy
  reference timed on a cloud ``--shrink`` times smaller in both N and n and extrapolated
  by its O(N n) cost; bucket FPS on that same small cloud, for a measured ratio too;
  the tiled sampler (``fps-tiled``) with its covering radius relative to exact FPS.
* kNN of the 64000 sampled points: the kd-tree of ``knn_indices`` (pykdtree when installed)
  and cKDTree on all cores; the brute-force reference on the first ``--brute-points`` of them,
  extrapolated by its O(N^2) cost.
* FPFH (the fused score's descriptor, at the model's spacing) of the sampled points as FPS
  lists them and in locality order (:mod:`st3d_edge.geometry.locality`), with the cost of the
  ordering and the kNN in that order.
* The IDW fill of all 300000 points from the 64000 sampled scores (the runtime's last stage):
  by cKDTree (the previous path), by pykdtree when installed, and through the pixel grid
  (``grid_idw_fill``), with its largest difference from the kd-tree fill.

The cloud is a synthetic scan-like height field (10 cm square, waves and a bump, 10 % of
pixels missing, 20 micrometre noise).

    python benchmarks/geometry.py [--points 300000] [--samples 64000] [--k 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def height_field(n_points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(points, their (row, column) pixels, the image's shape): an organized scan."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_points / 0.9)))
    u, v = np.meshgrid(np.linspace(0, 0.1, side), np.linspace(0, 0.1, side), indexing="ij")
    bump = 0.02 * np.exp(-((u - 0.05) ** 2 + (v - 0.04) ** 2) / 0.0004)
    z = 0.01 * np.sin(40 * u) * np.cos(30 * v) + bump
    grid = np.stack([u, v, z], axis=-1).reshape(-1, 3)
    keep = np.sort(rng.permutation(len(grid))[:n_points])
    points = (grid[keep] + rng.normal(0.0, 2e-5, (n_points, 3))).astype(np.float32)
    return points, np.stack(np.divmod(keep, side), axis=1), (side, side)


def voxel_reduce(points: np.ndarray, target: int) -> np.ndarray:
    """Sorted indices of one point per voxel, the voxel size tuned (3 rounds) to ~``target``."""
    low = points.min(axis=0)
    extent = points.max(axis=0) - low
    size = float(np.sqrt(extent[0] * extent[1] / target))  # a height field seen from above
    for _ in range(3):
        cells = np.floor((points - low) / size).astype(np.int64)
        key = (cells[:, 0] << 42) + (cells[:, 1] << 21) + cells[:, 2]
        first = np.unique(key, return_index=True)[1]
        size *= float(np.sqrt(len(first) / target))
    return np.sort(first)


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

    import fpsample

    from st3d_edge.geometry.fill import idw_fill
    from st3d_edge.geometry.fps import fps_bucket, fps_exact
    from st3d_edge.geometry.grid_fill import PixelGrid, grid_idw_fill
    from st3d_edge.geometry.grid_fps import fps_grid
    from st3d_edge.geometry.kdtree import pykdtree_available
    from st3d_edge.geometry.knn import knn_bruteforce, knn_indices
    from st3d_edge.geometry.sampling import covering_radius
    from st3d_edge.geometry.tiles import fps_tiled

    cloud, pixels, shape = height_field(args.points)
    n, k, reps = args.samples, args.k, args.repeats
    small = height_field(args.points // args.shrink, seed=1)[0]
    small_n = n // args.shrink
    cost_ratio = (len(cloud) * n) / (len(small) * small_n)
    # name, seconds, extrapolation factor, baseline row (for the ratio) or "", note
    rows: list[tuple[str, np.ndarray, float, str, str]] = []

    bucket_s, picked = timed(lambda: fps_bucket(cloud, n), reps)
    fps_base = f"FPS bucket (fpsample) {n}/{len(cloud)}"
    rows.append((fps_base, bucket_s, 1.0, "", "baseline"))
    grid_s, grid = timed(lambda: fps_grid(cloud, n), reps)
    ratio = covering_radius(cloud, grid) / covering_radius(cloud, picked)
    note = f"exact FPS from point 0; covering radius {ratio:.3f} x"
    rows.append((f"FPS grid (numba, the fps sampler) {n}/{len(cloud)}", grid_s, 1.0, fps_base, note))
    height7_s, height7 = timed(lambda: fpsample.bucket_fps_kdline_sampling(cloud, n, 7, start_idx=0), reps)
    cover = covering_radius(cloud, picked)
    note = f"previous height; covering radius {covering_radius(cloud, height7) / cover:.3f} x"
    rows.append((f"FPS bucket height 7 {n}/{len(cloud)}", height7_s, 1.0, fps_base, note))
    for factor in (2, 4):
        reduce_s, keep = timed(lambda f=factor: voxel_reduce(cloud, f * n), reps)
        fps_s, sub = timed(lambda keep=keep: fps_bucket(cloud[keep], n), reps)
        note = (
            f"voxels to {len(keep)} points; covering radius {covering_radius(cloud, keep[sub]) / cover:.3f} x"
        )
        rows.append((f"FPS voxel {factor}n + bucket {n}/{len(cloud)}", reduce_s + fps_s, 1.0, fps_base, note))
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
    ckd_s, _ = timed(lambda: knn_indices(sampled, k, use_pykdtree=False), reps)
    knn_base = f"kNN cKDTree k={k} on {n} (workers=-1)"
    rows.append((knn_base, ckd_s, 1.0, "", "baseline"))
    tree_s, knn = timed(lambda: knn_indices(sampled, k), reps)
    tree = "pykdtree" if pykdtree_available() else "cKDTree"
    rows.append((f"kNN knn_indices ({tree}) k={k} on {n}", tree_s, 1.0, knn_base, "the runtime's"))
    subset = min(args.brute_points, n)
    brute_s, _ = timed(lambda: knn_bruteforce(sampled[:subset], k, chunk=256), max(1, reps // 2))
    scale = (n / subset) ** 2
    note = f"extrapolated x{scale:.0f} (O(N^2)) from {subset} points"
    rows.append((f"kNN brute force k={k} on {n}", brute_s, scale, knn_base, note))

    # the FPFH stage on the samples as FPS lists them and in locality order (same set)
    from st3d_edge.geometry.fpfh import fpfh
    from st3d_edge.geometry.locality import locality_order
    from st3d_edge.geometry.scale import knn_distance_sum

    total, count = knn_distance_sum(sampled, knn)
    s = total / count  # the model's spacing, eq. 4
    fpfh_reps = max(1, reps // 2)
    picked_s, described = timed(lambda: fpfh(sampled, 2 * s, 5 * s), fpfh_reps)
    fpfh_base = f"FPFH of {n} samples in FPS order"
    rows.append((fpfh_base, picked_s, 1.0, "", "baseline"))
    order_s, order = timed(lambda: locality_order(sampled), reps)
    local = sampled[order]
    local_s, local_described = timed(lambda: fpfh(local, 2 * s, 5 * s), fpfh_reps)
    same = np.array_equal(local_described, described[order])
    rows.append((f"FPFH of {n} samples in locality order", local_s, 1.0, fpfh_base, f"same values: {same}"))
    rows.append((f"locality order of {n} samples", order_s, 1.0, fpfh_base, "Morton codes and a sort"))
    local_knn_s, _ = timed(lambda: knn_indices(local, k), reps)
    rows.append((f"kNN knn_indices k={k} in locality order", local_knn_s, 1.0, knn_base, ""))

    # FPFH's neighbourhoods (each sample's 100 nearest): the kd-tree against the numba grid
    from st3d_edge.geometry.fpfh import neighbour_count
    from st3d_edge.geometry.kdtree import nearest_in_cloud

    wide = neighbour_count()
    tree_wide_s, (tree_d, _) = timed(lambda: nearest_in_cloud(local, wide, use_grid=False), reps)
    wide_base = f"{wide} nearest of {n} (cKDTree, workers=-1)"
    rows.append((wide_base, tree_wide_s, 1.0, "", "baseline"))
    grid_wide_s, (grid_d, _) = timed(lambda: nearest_in_cloud(local, wide, use_grid=True), reps)
    note = f"same distances: {np.array_equal(grid_d, tree_d)}; FPFH's"
    rows.append((f"{wide} nearest of {n} (numba grid)", grid_wide_s, 1.0, wide_base, note))

    scores = np.random.default_rng(0).random(n)
    fill_s, exact = timed(lambda: idw_fill(sampled, scores, cloud, use_pykdtree=False), reps)
    fill_base = f"IDW fill {len(cloud)} from {n} (4 nn, cKDTree)"
    rows.append((fill_base, fill_s, 1.0, "", "baseline"))
    fill_s, _ = timed(lambda: idw_fill(sampled, scores, cloud), reps)
    rows.append((f"IDW fill ({tree})", fill_s, 1.0, fill_base, ""))
    grid = PixelGrid(shape, pixels, picked, knn)
    grid_s, fast = timed(lambda: grid_idw_fill(sampled, scores, cloud, grid), reps)
    worst = float(np.abs(fast.astype(np.float64) - exact).max() / np.ptp(scores))
    note = f"max |grid - kd-tree| / score range {worst:.1e}"
    rows.append(("IDW fill through the pixel grid", grid_s, 1.0, fill_base, note))

    print(f"CPU geometry, {os.cpu_count()} logical CPUs, {reps} repeats (median, p90)")
    print(f"{'stage':44} {'median s':>10} {'p90 s':>10} {'ratio':>9}  note")
    medians = {name: np.median(seconds) * scale for name, seconds, scale, _, _ in rows}
    for name, seconds, scale, base, note in rows:
        median, p90 = medians[name], np.percentile(seconds, 90) * scale
        ratio = f"{median / medians[base]:8.1f}x" if base else f"{'':9}"
        print(f"{name:44} {median:10.3f} {p90:10.3f} {ratio}  {note}")


if __name__ == "__main__":
    main()
