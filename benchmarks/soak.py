"""Soak: `st3d-edge infer` over many scans, with bad ones mixed in, in one process.

Checks that a long unattended run stays flat: peak RSS of the infer process and the time per
scan over the first and the last tenth of the batch, and that results.jsonl ends with exactly
one record per scan (a failure record for each bad one). The model is the real exported
scorer graph with random weights (seeded) at n = 2048, k = 16, d = 64 (the cpu preset): the
timing and memory of the runtime do not depend on the weights. Scans are wavy synthetic
surfaces with sensor noise and dropouts; every ``--bad-every``-th scan is spoiled in turn: a
file that is not a TIFF, a pixel at 1e18, a scan in millimetres, no valid pixel.

    python benchmarks/soak.py [--scans 300] [--size 64] [--large 0] [--bad-every 50] [--threads 2]

``--large N`` adds N scans of 800 x 800 (7.7 MB each). The full soak, ``--scans 2000 --large
200``, took 8.4 minutes on 2 idle cores: 2200 scans, 44 of them bad, one record per scan, the
failures exactly the bad scans; peak RSS 228 MiB over the first tenth and 276 MiB over the last.
The large scans sort after the small ones, so the last tenth's higher RSS and time per scan (438
against 181 ms) are those of the 800 x 800 scans at n = 2048, not a drift. Then it runs infer a
second time over the same folder, where every scored scan is skipped and only the failed ones
are tried again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N, K, D = 2048, 16, 64
SPOILS = ("not-a-tiff", "pixel-at-1e18", "millimetres", "no-valid-pixel")


def surface(size: int, rng: np.random.Generator) -> np.ndarray:
    """An organized H x W x 3 cloud in metres: a wavy 10 cm patch, noise, 3 % dropouts."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    phase = rng.uniform(0, 6.28)
    z = 0.005 * np.sin(6 * xs + phase) * np.cos(4 * ys) + 0.0001 * rng.standard_normal(xs.shape)
    xyz = np.stack([0.1 * xs, 0.1 * ys, 0.4 + z], axis=-1).astype(np.float32)
    xyz[rng.random((size, size)) < 0.03] = 0.0
    return xyz


def write_scans(folder: Path, count: int, size: int, bad_every: int, seed: int) -> dict[str, str]:
    """Write the scans; returns file name -> spoil for the bad ones."""
    import tifffile

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    bad = {}
    for i in range(count):
        path = folder / f"{size}_{i:05d}.tiff"
        xyz = surface(size, rng)
        spoil = (
            SPOILS[(i // bad_every) % len(SPOILS)] if bad_every and i % bad_every == bad_every - 1 else None
        )
        if spoil == "not-a-tiff":
            path.write_bytes(b"II*\0 truncated")
        else:
            if spoil == "pixel-at-1e18":
                xyz[size // 2, size // 2] = 1e18
            elif spoil == "millimetres":
                xyz *= 1000.0
            elif spoil == "no-valid-pixel":
                xyz[:] = 0.0
            tifffile.imwrite(path, xyz, photometric="rgb")
        if spoil:
            bad[path.name] = spoil
    return bad


def make_bundle(folder: Path, scans: Path) -> None:
    """The exported scorer with random weights, and s measured on the soak's own scans."""
    import torch

    from st3d_edge.data.mvtec import read_scan
    from st3d_edge.export.onnx_graph import export_scorer_onnx
    from st3d_edge.geometry.knn import knn_indices
    from st3d_edge.geometry.sampling import sample_indices
    from st3d_edge.geometry.scale import knn_distance_sum, scale_s
    from st3d_edge.model.network import DescriptorNet
    from st3d_edge.runtime.bundle import write_manifest

    torch.manual_seed(0)
    teacher, student = DescriptorNet(d=D).eval(), DescriptorNet(d=D).eval()
    points = read_scan(sorted(scans.glob("*.tiff"))[0]).points
    sample = points[sample_indices(points, N)]
    s = scale_s([knn_distance_sum(sample, knn_indices(sample, K))])
    folder.mkdir(parents=True, exist_ok=True)
    export_scorer_onnx(
        teacher, student, s, np.zeros(D, np.float32), np.ones(D, np.float32), K, folder / "model.onnx"
    )
    write_manifest(
        folder, category="soak", n=N, k=K, d=D, s=s, sampler="fps", precision="fp32",
        models={"fp32": "model.onnx"}, thresholds={"image": 1.0, "pixel": 1.0},
        image_score={"neighbours": 8}, versions={},
    )  # fmt: skip


def run_infer(
    scans: Path, bundle: Path, out: Path, threads: int
) -> tuple[float, list[tuple[float, float]], int]:
    """Run the CLI in a child process; (wall seconds, [(time, rss MiB)] samples, exit code)."""
    import psutil

    command = [sys.executable, "-c", "from st3d_edge.cli import main; main()", "infer", str(scans)]
    command += ["--model", str(bundle), "--out", str(out), "--geometry", "cpu", "--threads", str(threads)]
    start = time.time()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watcher = psutil.Process(child.pid)
    samples = []
    while child.poll() is None:
        try:
            samples.append((time.time(), watcher.memory_info().rss / 2**20))
        except psutil.Error:
            break
        time.sleep(0.05)
    return time.time() - start, samples, child.returncode


def _epoch(record: dict) -> float:
    from datetime import datetime

    return datetime.fromisoformat(record["time"]).timestamp()


def report(records: list[dict], samples: list[tuple[float, float]], label: str) -> None:
    scored = [r for r in records if "error" not in r]
    tenth = max(1, len(scored) // 10)
    first, last = scored[:tenth], scored[-tenth:]

    def window(part):
        lo, hi = _epoch(part[0]), _epoch(part[-1]) + part[-1]["total_ms"] / 1000
        rss = [m for t, m in samples if lo <= t <= hi]
        ms = [r["total_ms"] for r in part]
        return (max(rss) if rss else float("nan")), float(np.median(ms)), float(np.percentile(ms, 90))

    (rss0, med0, p90_0), (rss1, med1, p90_1) = window(first), window(last)
    # wall time from one record to the next includes reading, hashing and writing every output
    starts = np.array([_epoch(r) for r in records])
    wall = np.diff(starts) * 1000
    wall0, wall1 = np.median(wall[: len(wall) // 10 or 1]), np.median(wall[-(len(wall) // 10 or 1) :])
    slope = np.polyfit(np.arange(len(scored)), [r["total_ms"] for r in scored], 1)[0] * 1000
    print(f"{label}: scored {len(scored)}, failed {len(records) - len(scored)}")
    print(
        f"  first tenth: peak RSS {rss0:7.1f} MiB, pipeline per scan median {med0:7.1f} ms "
        f"(p90 {p90_0:7.1f}), wall per record median {wall0:7.1f} ms"
    )
    print(
        f"  last tenth:  peak RSS {rss1:7.1f} MiB, pipeline per scan median {med1:7.1f} ms "
        f"(p90 {p90_1:7.1f}), wall per record median {wall1:7.1f} ms"
    )
    print(f"  pipeline time trend: {slope:+.1f} ms per 1000 scans (least squares)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scans", type=int, default=300, help="small scans")
    parser.add_argument("--size", type=int, default=64, help="small scans are size x size")
    parser.add_argument("--large", type=int, default=0, help="scans of 800 x 800")
    parser.add_argument("--bad-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    with tempfile.TemporaryDirectory(prefix="st3d-soak-") as tmp:
        tmp = Path(tmp)
        scans = tmp / "scans"
        bad = write_scans(scans, args.scans, args.size, args.bad_every, seed=0)
        if args.large:
            bad |= write_scans(scans, args.large, 800, args.bad_every, seed=1)
        make_bundle(tmp / "bundle", scans)
        total = args.scans + args.large
        out = tmp / "out"
        load_before = os.getloadavg()[0]
        wall, samples, code = run_infer(scans, tmp / "bundle", out, args.threads)
        print(f"machine load average (1 min) before {load_before:.1f}, after {os.getloadavg()[0]:.1f}")
        records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        files = [Path(r["file"]).name for r in records]
        failed = {Path(r["file"]).name for r in records if "error" in r}
        print(f"{total} scans ({len(bad)} bad) in {wall:.1f} s, exit code {code}")
        report(records, samples, "first run")
        print(f"  one record per scan: {len(files) == len(set(files)) == total}; "
              f"failures are exactly the bad scans: {failed == set(bad)}")  # fmt: skip
        wall2, samples2, code2 = run_infer(scans, tmp / "bundle", out, args.threads)
        again = (out / "results.jsonl").read_text().splitlines()
        print(
            f"second run: {wall2:.1f} s, exit code {code2}, records added {len(again) - len(records)} "
            f"(the {len(bad)} failed scans are tried again), peak RSS {max(m for _, m in samples2):.1f} MiB"
        )


if __name__ == "__main__":
    main()
