"""Edge runtime latency and memory per stage, one inference backend per process.

One synthetic 800 x 800 scan (category tire, one dent), n = 64000, k = 32, d = 64. The model is
a *randomly initialised* teacher/student pair (seeded), exported through st3d_edge.export to
ONNX: the timing of a network does not depend on its weights, and this keeps the benchmark
independent of a trained run. Every backend uses the same pipeline (read, FPS, kNN, fill, image
score on the CPU geometry); only the inference backend differs:

* ``numba``: the exported FP32 graph's weights run by numba kernels (the CPU default),
* ``onnxruntime``: the exported graph in onnxruntime on the CPU,
* ``pytorch``: the train side's ``Scorer`` on the same teacher, student, s, mu and sigma
  (PyTorch eager, the baseline the ratios divide by).

``--scoring fused`` (default) adds the shipped scorer's geometric stage: FPFH of the sampled
points against a memory bank built from two other good scans of the same category, fused with
the student's error. ``--scoring student`` is the paper's 3D-ST alone.

Each backend runs in a fresh process, so its peak host RSS is its own; the peak after each
stage shows which stage holds the memory. The pixel scores of every backend are compared with
PyTorch's (max relative difference), so the timing compares equal work.

A second table times the first backend again with the previous CPU geometry (bucket height 7,
cKDTree kNN, kd-tree fill of every pixel; ``--no-previous-geometry`` skips it), so the geometry
stages' speed-up is measured on the same machine in the same run (in another process: on a
shared machine compare repeated runs, or benchmarks/geometry.py's in-process rows). The current
fill is also compared with the kd-tree fill on the same samples and scores.

Each process first keeps freed memory for the next scan, as the Detector does
(:mod:`st3d_edge.runtime.allocator`); ``--system-malloc`` leaves malloc alone, for comparing.
The minor page faults per timed scan are reported beside the timings.

    python benchmarks/runtime.py [--repeats 5] [--warmup 1] [--threads 2] [--size 800]
        [--backends numba onnxruntime pytorch] [--scoring fused|student] [--json FILE]
        [--sampler fps-split|fps|fps-tiled|...] [--no-previous-geometry] [--system-malloc]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from st3d_edge.config import ModelConfig
from st3d_edge.geometry.sampling import SAMPLERS

N, K, D = 64000, 32, 64
BACKENDS = ("numba", "onnxruntime", "pytorch")


def make_bundle(folder: Path, scan_points: np.ndarray, threads: int, sampler: str) -> None:
    """A random-weight bundle for n, k, d above, and the torch modules beside it (``torch.pt``);
    the pipeline samples every scan with ``sampler``, as the bundle says."""
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
    torch.save(
        {"teacher": teacher.state_dict(), "student": student.state_dict(), "s": s}, folder / "torch.pt"
    )
    write_manifest(
        folder,
        category="tire",
        n=N,
        k=K,
        d=D,
        s=s,
        sampler=sampler,
        precision="fp32",
        models={"fp32": "model.onnx"},
        thresholds={},
        image_score={},
        versions={},
    )


def write_bank(folder: Path, bundle_dir: Path, good_scans: list[Path]) -> None:
    """The geometric bank from ``good_scans`` (sampled like the scan), as a run folder keeps it."""
    from st3d_edge.calibration.geometric import GeometricScore, GeometricSettings
    from st3d_edge.data.mvtec import read_scan
    from st3d_edge.geometry.sampling import sample_indices
    from st3d_edge.runtime.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    clouds = []
    for path in good_scans:
        points = read_scan(path).points
        clouds.append(points[sample_indices(points, bundle.n)])
    GeometricScore.fit(clouds, GeometricSettings(s=float(bundle.s))).save(folder)


def fused_scoring(folder: Path):
    """The shipped scoring with the saved bank and a unit fusion (the timing needs no calibration)."""
    from st3d_edge.calibration.fusion import Fusion
    from st3d_edge.calibration.geometric import GeometricScore
    from st3d_edge.calibration.scoring import Scoring

    return Scoring("fused", GeometricScore.load(folder), Fusion(0.0, 1.0, 0.0, 1.0))


def previous_geometry(threads: int):
    """The CPU geometry as it was before the pixel-grid fill, pykdtree and bucket height 8."""
    import fpsample

    from st3d_edge.geometry.fill import idw_fill
    from st3d_edge.geometry.fps import distinct_completion
    from st3d_edge.geometry.knn import knn_indices
    from st3d_edge.runtime.geometry_backend import CpuGeometry

    class PreviousGeometry(CpuGeometry):
        name = "cpu-previous"
        fill_grid = None  # the pipeline falls back to ``fill``: the kd-tree for every pixel
        knn_and_nearest = None  # the kNN graph and FPFH's neighbours by two queries

        def sample(self, points, n, sampler="fps"):
            if sampler != "fps" or n >= len(points):
                return np.sort(super().sample(points, n, sampler))
            picked = fpsample.bucket_fps_kdline_sampling(np.ascontiguousarray(points), n, 7, start_idx=0)
            return np.sort(distinct_completion(picked, len(points)))  # scan order, as it was

        def knn(self, points, k):
            return knn_indices(points, k, workers=self.workers, use_pykdtree=False)

        def fill(self, sample_points, scores, query_points):
            scores = np.asarray(scores, np.float32)
            return idw_fill(sample_points, scores, query_points, use_pykdtree=False)

    return PreviousGeometry(workers=threads)


def compare_fill(scan, scorer) -> tuple[float, float]:
    """(max |grid fill - kd-tree fill| / score range, fraction of pixels beyond 1e-6 of it)."""
    from st3d_edge.geometry.fill import idw_fill
    from st3d_edge.geometry.grid_fill import PixelGrid, grid_idw_fill
    from st3d_edge.geometry.knn import knn_indices

    points = np.asarray(scan.points, dtype=np.float32)
    idx = scorer.geometry.sample(points, scorer.n, scorer.sampler)
    samples = points[idx]
    knn = knn_indices(samples, scorer.k)
    scores = np.asarray(scorer.backend.run(samples, knn), dtype=np.float32)
    fast = grid_idw_fill(samples, scores, points, PixelGrid(scan.valid.shape, scan.pixels, idx, knn))
    exact = idw_fill(samples, scores, points, use_pykdtree=False)
    diff = np.abs(fast.astype(np.float64) - exact) / max(float(np.ptp(scores)), 1e-30)
    return float(diff.max()), float((diff > 1e-6).mean())


def backend_for(name: str, bundle_dir: Path, threads: int):
    """The backend ``name``; torch is imported only for ``pytorch`` (the edge runs without it)."""
    from st3d_edge.runtime.backends import OnnxRuntimeBackend
    from st3d_edge.runtime.cpu_scorer import NumbaCpuBackend

    if name == "numba":
        return NumbaCpuBackend(bundle_dir / "model.onnx", threads=threads)
    if name == "onnxruntime":
        return OnnxRuntimeBackend(bundle_dir / "model.onnx", threads=threads)
    import torch

    from st3d_edge.commands.bench import TorchScorerBackend
    from st3d_edge.model.network import DescriptorNet
    from st3d_edge.model.scorer import Scorer

    torch.set_num_threads(threads)
    saved = torch.load(bundle_dir / "torch.pt")
    nets = []
    for key in ("teacher", "student"):
        net = DescriptorNet(d=D)
        net.load_state_dict(saved[key])
        nets.append(net.eval())
    mu, sigma = np.zeros(D, np.float32), np.ones(D, np.float32)
    return TorchScorerBackend(Scorer(nets[0], nets[1], saved["s"], mu, sigma))


def minor_faults() -> int:
    """The process's minor page faults so far (0 where the resource module is missing)."""
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def child(args) -> None:
    """Time one backend in this process; print one JSON line."""
    from st3d_edge.data.readers import read_scan
    from st3d_edge.runtime.allocator import keep_freed_memory
    from st3d_edge.runtime.bundle import load_bundle
    from st3d_edge.runtime.geometry_backend import CpuGeometry
    from st3d_edge.runtime.memory import peak_host_rss_mb
    from st3d_edge.runtime.pipeline import ScanScorer
    from st3d_edge.runtime.timing import StageClock, summarize_runs

    work = Path(args.work)
    malloc_kept = False if args.system_malloc else keep_freed_memory()
    bundle = load_bundle(work / "bundle")
    scans = sorted(work.glob("data/*/*/*/xyz/*.tiff"))
    scan_path = next(p for p in scans if "/test/" in p.as_posix())
    scoring = fused_scoring(work / "geometric") if args.scoring == "fused" else None
    loaded_mb = peak_host_rss_mb()
    geometry = previous_geometry(args.threads) if args.previous else CpuGeometry(workers=args.threads)
    scorer = ScanScorer(bundle, backend_for(args.child, work / "bundle", args.threads), geometry, scoring)
    runs, first_peaks = [], {}
    faults_before = minor_faults()
    for i in range(args.warmup + args.repeats):
        clock = StageClock(track_memory=True)
        with clock.stage("read"):
            scan = read_scan(scan_path)
        result = scorer.score(scan, clock)
        if i == 0:  # the first scan raises the high-water mark; later ones reuse the memory
            first_peaks = clock.peak_mb
        if i >= args.warmup:
            runs.append(result.ms)
        if i == args.warmup - 1:
            faults_before = minor_faults()
    fill_drift = None if args.previous else compare_fill(read_scan(scan_path), scorer)
    if not args.previous:
        np.save(work / f"scores-{args.child}.npy", result.point_scores)
    print(
        json.dumps(
            {
                "backend": args.child,
                "stages": summarize_runs(runs),
                "peak_mb_after_stage": first_peaks,
                "peak_mb_before_scoring": loaded_mb,
                "peak_mb": peak_host_rss_mb(),
                "valid_points": result.valid_points,
                "sampled_points": result.sampled_points,
                "fill_vs_kd_tree": fill_drift,
                "malloc_keeps_freed_memory": malloc_kept,
                "page_faults_per_scan": (minor_faults() - faults_before) / max(args.repeats, 1),
            }
        )
    )


def table(results: dict[str, dict], baseline: str) -> str:
    names = list(results)
    stages = list(next(iter(results.values()))["stages"])
    header = f"{'stage':<12}" + "".join(f" {n + ' median':>22} {'p90':>8}" for n in names)
    if baseline in results:
        header += "".join(f" {baseline + '/' + n:>22}" for n in names if n != baseline)
    lines = [header + "   (ms)"]
    for stage in stages:
        line = f"{stage:<12}"
        for n in names:
            st = results[n]["stages"].get(stage, {"median": float("nan"), "p90": float("nan")})
            line += f" {st['median']:>22.1f} {st['p90']:>8.1f}"
        if baseline in results:
            base = results[baseline]["stages"].get(stage, {"median": float("nan")})["median"]
            for n in names:
                if n != baseline:
                    mine = results[n]["stages"].get(stage, {"median": float("nan")})["median"]
                    line += f" {base / mine if mine > 0 else float('nan'):>22.2f}"
        lines.append(line)
    lines.append("")
    lines.append("peak host RSS (MiB) after each stage of the first scan:")
    for n in names:
        after = ", ".join(f"{k} {v:.0f}" for k, v in results[n]["peak_mb_after_stage"].items())
        lines.append(f"  {n}: loaded {results[n]['peak_mb_before_scoring']:.0f}; {after}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=800)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--scoring", choices=("fused", "student"), default="fused")
    parser.add_argument(
        "--sampler", choices=SAMPLERS, default=ModelConfig().sampler, help="the bundle's sampler"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--no-previous-geometry", dest="compare_geometry", action="store_false")
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="leave malloc as it is (st3d_edge.runtime.allocator's setting is the default)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--previous", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import torch

    from st3d_edge.data import synthetic
    from st3d_edge.data.mvtec import read_scan

    with tempfile.TemporaryDirectory(prefix="st3d-runtime-bench-") as tmp:
        work = Path(tmp)
        # two good scans for the geometric bank, one defective scan to time
        synthetic.write_dataset(
            work / "data",
            categories=["tire"],
            train=2,
            validation=0,
            test_good=0,
            test_defect=1,
            size=(args.size, args.size),
            seed=0,
            progress=False,
            defects=[synthetic.DEFECTS[0]],
        )
        scan_path = next((work / "data").glob("tire/test/*/xyz/*.tiff"))
        make_bundle(work / "bundle", read_scan(scan_path).points, args.threads, args.sampler)
        if args.scoring == "fused":
            write_bank(
                work / "geometric", work / "bundle", sorted((work / "data").glob("tire/train/*/xyz/*.tiff"))
            )
        results = {}

        def command_for(name: str) -> list[str]:
            command = [sys.executable, __file__, "--child", name, "--work", str(work)]
            command += ["--repeats", str(args.repeats), "--warmup", str(args.warmup)]
            command += ["--threads", str(args.threads), "--scoring", args.scoring]
            return command + (["--system-malloc"] if args.system_malloc else [])

        for name in args.backends:
            done = subprocess.run(command_for(name), capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"backend {name} failed:\n{done.stderr}")
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        geometries = {}
        if args.compare_geometry:
            command = command_for(args.backends[0]) + ["--previous"]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"the previous geometry failed:\n{done.stderr}")
            geometries["geometry now"] = results[args.backends[0]]
            geometries["previous"] = json.loads(done.stdout.strip().splitlines()[-1])
        reference = np.load(work / f"scores-{args.backends[-1]}.npy")
        for name in args.backends:
            scores = np.load(work / f"scores-{name}.npy")
            results[name]["max_relative_difference"] = float(
                np.max(np.abs(scores - reference)) / np.max(np.abs(reference))
            )
    first = next(iter(results.values()))
    print(
        f"scan {args.size}x{args.size}: {first['valid_points']} valid points -> "
        f"n = {first['sampled_points']}, k = {K}, d = {D} (random weights); scoring {args.scoring}; "
        f"sampler {args.sampler}; "
        f"{args.repeats} runs after {args.warmup} warm-up, each backend in its own process; "
        f"{args.threads} threads; torch {torch.__version__}"
    )
    print(table(results, "pytorch"))
    for name, r in results.items():
        print(
            f"{name}: {1000 / r['stages']['total']['median']:.2f} scans/s, peak host RSS "
            f"{r['peak_mb']:.0f} MiB, pixel scores vs {args.backends[-1]}: max relative difference "
            f"{r['max_relative_difference']:.1e}; page faults per scan {r['page_faults_per_scan']:.0f} "
            f"(malloc keeps freed memory: {r['malloc_keeps_freed_memory']})"
        )
    if geometries:
        print()
        print(f"CPU geometry, {args.backends[0]} backend, each in its own process (ratio: previous/now)")
        print(table(geometries, "previous").split("\n\n")[0])
        worst, differing = geometries["geometry now"]["fill_vs_kd_tree"]
        print(
            "pixel-grid fill vs kd-tree fill on the same samples and scores: max |difference| / "
            f"score range {worst:.1e}, pixels differing by more than 1e-6 of it {differing:.1e}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: v for k, v in vars(args).items() if k not in ("child", "work", "json")},
                    "results": results,
                    "geometry": geometries,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
