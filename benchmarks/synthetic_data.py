"""Synthetic MVTec-format data: time to render one scan and to write one category.

Rows (median and p90 over ``--repeats`` renders of different samples, one process):

* good scan: one noise-free render plus noise, shading, per category.
* defective scan, fast: the defective scene rendered in full and the good scene only for the
  rays near the defect (what ``write_dataset`` does), against the baseline of two full renders
  (the test reference), with their ratio.
* culling: one full render against the same render marching every ray in the part's box.
* one category at the default counts (20 train, 5 validation, 5 good test, 2 per defect type),
  TIFF/PNG writing included, timed once.

    python benchmarks/synthetic_data.py [--size 800] [--repeats 3] [--categories tire foam]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def stats(seconds: list[float]) -> str:
    s = np.asarray(seconds)
    return f"{np.median(s):7.2f} s  p90 {np.percentile(s, 90):6.2f} s"


def main() -> None:
    from st3d_edge.data import camera, synthetic
    from st3d_edge.data.defects import draw_defect

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--categories", nargs="+", default=list(synthetic.CATEGORIES))
    parser.add_argument("--write-category", default="tire", help="category written at default counts")
    parser.add_argument("--skip-write", action="store_true")
    args = parser.parse_args()
    size = (args.size, args.size)
    print(f"synthetic data, {args.size}x{args.size}, {os.cpu_count()} CPU cores, {args.repeats} repeats")
    print(f"{'category':<9} {'good scan':>26} {'defective (fast)':>28} {'two full renders':>28} {'ratio':>6}")
    for category in args.categories:
        good, fast, slow = [], [], []
        for i in range(args.repeats):
            t = time.perf_counter()
            synthetic.render_sample(category, np.random.default_rng(i), size)
            good.append(time.perf_counter() - t)
            kind = synthetic.DEFECTS[i % len(synthetic.DEFECTS)]
            t = time.perf_counter()
            synthetic.render_sample(category, np.random.default_rng(100 + i), size, kind)
            fast.append(time.perf_counter() - t)
            scene = synthetic.draw_scene(category, np.random.default_rng(100 + i), size)
            defect = draw_defect(kind, np.random.default_rng(200 + i), scene.part)
            t = time.perf_counter()
            synthetic.changed_pixels(scene.render(), scene.render(defect))
            slow.append(time.perf_counter() - t)
        ratio = np.median(slow) / np.median(fast)
        print(f"{category:<9} {stats(good):>26} {stats(fast):>28} {stats(slow):>28} {ratio:5.2f}x")

    scene = synthetic.draw_scene("bagel", np.random.default_rng(0), size)
    culled = []
    every = []
    real = camera.rays_near_part
    for _ in range(args.repeats):
        t = time.perf_counter()
        scene.render()
        culled.append(time.perf_counter() - t)
        camera.rays_near_part = lambda height, top_xy, bottom_xy, bbox: np.ones(len(top_xy), bool)
        try:
            t = time.perf_counter()
            scene.render()
            every.append(time.perf_counter() - t)
        finally:
            camera.rays_near_part = real
    ratio = np.median(every) / np.median(culled)
    print(f"bagel render, rays culled to the part: {stats(culled)}; every ray: {stats(every)}; {ratio:.2f}x")

    if args.skip_write:
        return
    out = Path(tempfile.mkdtemp(prefix="st3d-synth-bench-"))
    try:
        t = time.perf_counter()
        synthetic.write_dataset(out, categories=[args.write_category], size=size, progress=False)
        seconds = time.perf_counter() - t
        files = [p for p in out.rglob("*") if p.is_file()]
        megabytes = sum(p.stat().st_size for p in files) / 1e6
        n = sum(1 for p in files if p.suffix == ".tiff")
        print(
            f"write_dataset {args.write_category} at default counts: {n} scans, {len(files)} files, "
            f"{megabytes:.0f} MB in {seconds:.1f} s ({seconds / n:.2f} s per scan)"
        )
    finally:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
