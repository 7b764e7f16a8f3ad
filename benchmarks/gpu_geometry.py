"""GPU geometry (numba.cuda) against the CPU geometry, per stage, in the same process.

A synthetic 800 x 800 organized scan (a wavy part on a plane, about 70 % valid pixels, metres),
n = 64000 samples, k = 32, the 4-neighbour inverse-distance fill to every valid pixel. Stages:
FPS exact, FPS tiled, kNN of the samples, fill. Each cell is the median and p90 over
``--repeats`` runs after one warm-up (the GPU column also compiles its kernels in the warm-up
and synchronizes after every stage).

CPU baseline: ``fps (exact)`` = the grid FPS (exact FPS, the CPU default), ``fps (bucket)`` =
fpsample's bucket FPS (the CPU's fps without numba; a CPU-only row), ``fps-tiled`` = the CPU
tiled sampler, ``knn`` = cKDTree, ``fill`` = cKDTree IDW. The numpy ``fps_exact`` reference is
O(N n) and would take hours at this size, so it is not a baseline.

Without a GPU the GPU columns say so. ``--simulate`` runs the kernels under numba's CUDA
simulator on a tiny cloud and checks them against the CPU functions (correctness only: the
simulator runs every GPU thread as a Python thread, its times mean nothing).

    python benchmarks/gpu_geometry.py [--size 800] [--n 64000] [--repeats 3] [--threads 2] [--json F]
    python benchmarks/gpu_geometry.py --simulate
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

K = 32


def synthetic_scan(size: int, seed: int = 0) -> np.ndarray:
    """Valid points (row-major) of an organized scan: a bumpy part on a plane, with holes."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:size, 0:size].astype(np.float32) / size
    x, y = 0.1 * (u - 0.5), 0.1 * (v - 0.5)
    r = np.hypot(x, y)
    part = r < 0.04
    z = 0.3 + np.where(part, -0.01 * np.cos(r * 80) - 0.002 * np.sin(x * 300) * np.cos(y * 200), 0.0)
    z = z + rng.normal(0, 2e-5, z.shape)
    valid = part | (rng.random(z.shape) < 0.55)
    return np.stack([x, y, z], axis=-1)[valid].astype(np.float32)


def timed(fn, repeats: int, sync=None) -> tuple[float, float]:
    fn()
    if sync:
        sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times)), float(np.percentile(times, 90))


def cpu_stages(points: np.ndarray, n: int, threads: int) -> dict:
    from st3d_edge.geometry.fill import idw_fill
    from st3d_edge.geometry.fps import fps_bucket
    from st3d_edge.geometry.grid_fps import fps_grid
    from st3d_edge.geometry.knn import knn_indices
    from st3d_edge.geometry.tiles import fps_tiled

    sampled = points[fps_grid(points, n)]
    scores = np.random.default_rng(1).random(len(sampled)).astype(np.float32)
    return {
        "fps (exact)": lambda: fps_grid(points, n),
        "fps (bucket)": lambda: fps_bucket(points, n),
        "fps-tiled": lambda: fps_tiled(points, n),
        "knn k=32": lambda: knn_indices(sampled, K, workers=threads),
        "fill": lambda: idw_fill(sampled, scores, points),
    }


def gpu_stages(points: np.ndarray, n: int):
    from st3d_edge.runtime.cuda import CudaGeometry

    geo = CudaGeometry()
    cloud = geo.to_device(points)
    sampled = geo.take(cloud, geo.sample(cloud, n, "fps-exact"))
    scores = geo.to_device(np.random.default_rng(1).random(n).astype(np.float32))
    stages = {
        "fps (exact)": lambda: geo.sample(cloud, n, "fps-exact"),
        "fps-tiled": lambda: geo.sample(cloud, n, "fps-tiled"),
        "knn k=32": lambda: geo.knn(sampled, K),
        "fill": lambda: geo.fill(sampled, scores, cloud),
    }
    return stages, geo.synchronize


def gpu_name() -> str | None:
    try:
        from numba import cuda

        if not cuda.is_available():
            return None
        name = cuda.get_current_device().name
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return None


def benchmark(args) -> dict:
    points = synthetic_scan(args.size)
    n = min(args.n, len(points))
    print(f"scan {args.size}x{args.size}: {len(points)} valid points, n = {n}, k = {K}")
    cpu = {name: timed(fn, args.repeats) for name, fn in cpu_stages(points, n, args.threads).items()}
    card = gpu_name()
    gpu = {}
    if card:
        stages, sync = gpu_stages(points, n)
        gpu = {name: timed(fn, args.repeats, sync) for name, fn in stages.items()}
    print(f"CPU: {os.cpu_count()} cores visible, {args.threads} threads for cKDTree; GPU: {card or 'none'}")
    print(f"{'stage':<14}{'CPU median':>12}{'CPU p90':>10}{'GPU median':>12}{'GPU p90':>10}{'CPU/GPU':>9}")
    for name, (med, p90) in cpu.items():
        if name in gpu:
            gmed, gp90 = gpu[name]
            print(f"{name:<14}{med:>10.1f}ms{p90:>8.1f}ms{gmed:>10.2f}ms{gp90:>8.2f}ms{med / gmed:>8.1f}x")
        else:
            print(f"{name:<14}{med:>10.1f}ms{p90:>8.1f}ms{'CPU only' if gpu else 'needs a GPU':>22}")
    return {
        "gpu": card,
        "points": len(points),
        "n": n,
        "k": K,
        "cpu_ms": {name: {"median": m, "p90": p} for name, (m, p) in cpu.items()},
        "gpu_ms": {name: {"median": m, "p90": p} for name, (m, p) in gpu.items()},
    }


def simulate() -> int:
    """Tiny size under the simulator, compared with the CPU functions (exit 1 on a mismatch)."""
    from scipy.spatial import cKDTree

    from st3d_edge.geometry.fill import idw_fill
    from st3d_edge.geometry.fps import fps_exact
    from st3d_edge.geometry.knn import knn_indices
    from st3d_edge.geometry.tiles import fps_tiled
    from st3d_edge.runtime.cuda import CudaGeometry

    points = synthetic_scan(24)  # about 300 points
    n, k = 48, 8
    geo = CudaGeometry(threads=32, fps_threads=32, tile_points=96)
    cloud = geo.to_device(points)
    checks = {}
    idx = geo.to_host(geo.sample(cloud, n, "fps-exact"))
    checks["fps-exact == fps_exact"] = np.array_equal(idx, fps_exact(points, n))
    tiled = geo.to_host(geo.sample(cloud, n, "fps-tiled"))
    checks["fps-tiled == fps_tiled"] = np.array_equal(tiled, fps_tiled(points, n, tile_points=96))
    sampled = points[idx]
    knn = geo.to_host(geo.knn(geo.to_device(sampled), k))
    ref = knn_indices(sampled, k)
    d = cKDTree(sampled).query(sampled, k=k)[0]  # neighbour distances agree up to ties
    got_d = np.sort(np.linalg.norm(sampled[knn] - sampled[:, None], axis=2), axis=1)
    checks["knn self first, distances == cKDTree"] = bool(
        (knn[:, 0] == np.arange(n)).all() and (ref[:, 0] == np.arange(n)).all() and np.allclose(got_d, d)
    )
    scores = np.random.default_rng(1).random(n).astype(np.float32)
    filled = geo.to_host(geo.fill(sampled, scores, cloud))
    checks["fill == idw_fill"] = np.allclose(filled, idw_fill(sampled, scores, points), rtol=1e-4, atol=1e-5)
    print(f"simulator: {len(points)} points, n = {n}, k = {k} (correctness only)")
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=800)
    parser.add_argument("--n", type=int, default=64000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--simulate", action="store_true")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if args.simulate:
        # must be set before numba.cuda is first imported
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        return simulate()
    result = benchmark(args)
    if args.json:
        import json

        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
