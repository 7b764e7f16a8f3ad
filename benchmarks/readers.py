"""Reading one scan in every supported format: milliseconds per read, the TIFF as the baseline.

The cloud is an 800 x 800 organized height field (about MVTec 3D-AD's size; 10 % of pixels
missing, half of them as zeros and half as NaN); the unorganized formats hold its valid points.
Each file is written by its own library (tifffile, numpy, plyfile, pypcd4) and read with
``st3d_edge.data.readers.read_scan`` (median and p90 over repeats, after one warm-up read).

    python benchmarks/readers.py [--size 800] [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def organized(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u, v = np.meshgrid(np.linspace(0, 0.1, size), np.linspace(0, 0.1, size), indexing="ij")
    z = 0.3 + 0.01 * np.sin(40 * u) * np.cos(30 * v)
    xyz = np.stack([u, v, z], axis=-1).astype(np.float32)
    missing = rng.random((size, size))
    xyz[missing < 0.05] = 0.0
    xyz[(missing >= 0.05) & (missing < 0.1)] = np.nan
    return xyz


def write_all(folder: Path, xyz: np.ndarray) -> dict[str, Path]:
    import tifffile
    from plyfile import PlyData, PlyElement
    from pypcd4 import Encoding, PointCloud

    points = xyz[np.isfinite(xyz).all(axis=2) & (xyz != 0).any(axis=2)]
    files = {"TIFF H x W x 3 (baseline)": folder / "scan.tiff", "NPY H x W x 3": folder / "scan.npy"}
    tifffile.imwrite(files["TIFF H x W x 3 (baseline)"], xyz, photometric="rgb")
    np.save(files["NPY H x W x 3"], xyz)
    files["NPY N x 3"] = folder / "points.npy"
    np.save(files["NPY N x 3"], points)
    vertex = np.empty(len(points), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    for i, axis in enumerate("xyz"):
        vertex[axis] = points[:, i]
    for label, text in (("PLY binary", False), ("PLY ASCII", True)):
        files[label] = folder / f"{'text' if text else 'binary'}.ply"
        PlyData([PlyElement.describe(vertex, "vertex")], text=text).write(str(files[label]))
    for encoding in (Encoding.BINARY, Encoding.BINARY_COMPRESSED, Encoding.ASCII):
        label = f"PCD {encoding.value}"
        files[label] = folder / f"{encoding.value}.pcd"
        PointCloud.from_xyz_points(points).save(files[label], encoding=encoding)
    files["XYZ text"] = folder / "points.xyz"
    np.savetxt(files["XYZ text"], points, fmt="%.6f")
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from st3d_edge.data.readers import read_scan

    xyz = organized(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_all(Path(tmp), xyz)
        rows = []
        for label, path in files.items():
            read_scan(path)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                scan = read_scan(path)
                times.append(1000 * (time.perf_counter() - start))
            rows.append(
                (label, np.median(times), np.percentile(times, 90), len(scan.points), path.stat().st_size)
            )
    base = rows[0][1]
    print(
        f"{args.size} x {args.size} scan, {rows[0][3]} valid points; read_scan, ms over {args.repeats} reads"
    )
    print(f"{'format':<28}{'median':>9}{'p90':>9}{'x TIFF':>8}{'points':>10}{'MB':>8}")
    for label, median, p90, count, size in rows:
        print(f"{label:<28}{median:>9.1f}{p90:>9.1f}{median / base:>8.2f}{count:>10}{size / 2**20:>8.1f}")


if __name__ == "__main__":
    main()
