"""What the scoring's approximations cost in accuracy: fused AU-PRO and image AUROC per variant.

A variant overrides fields of each run's ``GeometricSettings``: ``bank_eps`` (the bank query
returns an entry at most 1 + eps times farther than the nearest; 0 is exact) and ``normals`` (the
normals' eigen solver: ``lapack``, numpy's bits, or ``closed-form``); or the sampler that reduces
each test scan (``sampler``: a name of st3d_edge.geometry.sampling.SAMPLERS; the run's own when
not given); or, for the noise floor of a sampler change, exact FPS from another first point
(``fps_start=middle``: the cloud's middle index instead of its first, with the ``fps`` sampler).
Every variant evaluates the same trained run folders on the same test scans through
the evaluation's own pipeline (``evaluate_scans``): only the named setting differs (and with
the same sampler, the same sampled points). The bank queries of each pass are timed (the
runtime's stage times are benchmarks/runtime.py's).

    python benchmarks/scoring_approximations.py --data TEST --runs RUNS --run-suffix=-s4000 \\
        --categories bagel carrot ... --variants bank_eps=0 bank_eps=1 [--jsonl F]
    ... --variants normals=lapack normals=closed-form
    ... --variants sampler=fps sampler=fps-split sampler=fps,fps_start=middle

Synthetic data only: no accuracy figure here is MVTec 3D-AD's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
from pathlib import Path


def parse_variant(text: str) -> dict:
    """``"bank_eps=1,normals=lapack"`` -> {"bank_eps": 1.0, "normals": "lapack"}."""
    out = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        if key == "bank_eps":
            out[key] = float(value)
        elif key in ("normals", "sampler"):
            out[key] = value
        elif key == "fps_start" and value == "middle":
            out[key] = value
        else:
            fields = "bank_eps, normals, sampler or fps_start=middle"
            raise SystemExit(f"unknown variant field {key!r} in {text!r}: use {fields}")
    return out


@contextlib.contextmanager
def first_point(where: str | None):
    """With ``"middle"``: the grid FPS (the ``fps`` sampler) starts from the cloud's middle
    index instead of its first, for as long as the block runs."""
    from st3d_edge.geometry import grid_fps

    exact = grid_fps.fps_grid
    if where == "middle":
        grid_fps.fps_grid = lambda points, n, start=0, cell_points=None: exact(
            points, n, len(points) // 2 if 0 < n < len(points) else 0, cell_points
        )
    try:
        yield
    finally:
        grid_fps.fps_grid = exact


def evaluate(data: Path, category: str, run: Path, variant: dict) -> dict:
    """One category's fused AU-PRO@0.3, image AUROC and bank-query seconds with the run's
    geometric settings and sampler overridden by ``variant``."""
    from st3d_edge.data.mvtec import read_scan, scan_paths
    from st3d_edge.evaluation.runner import ModelPointScorer, evaluate_scans

    settings = {key: value for key, value in variant.items() if key not in ("sampler", "fps_start")}
    scorer = ModelPointScorer(run, scoring="fused", sampler=variant.get("sampler"))
    geometric = scorer.scoring.geometric
    geometric.settings = dataclasses.replace(geometric.settings, **settings)
    geometric.settings.check(run)
    spent = [0.0]
    query = geometric.bank.distances

    def timed(descriptors, eps=0.0):
        start = time.perf_counter()
        out = query(descriptors, eps)
        spent[0] += time.perf_counter() - start
        return out

    geometric.bank.distances = timed
    paths = scan_paths(data, category, "test")
    with first_point(variant.get("fps_start")):
        result = evaluate_scans(
            (read_scan(p) for p in paths),
            scorer,
            category=category,
            method="fused",
            total=len(paths),
            progress=False,
            image_neighbours=scorer.image_neighbours,
            map_sigma=0.0,
        )
    return {
        "category": category,
        "variant": variant,
        "bank_eps": geometric.settings.bank_eps,
        "normals": geometric.settings.normals,
        "sampler": scorer.sampler,
        "fps_start": variant.get("fps_start", "first"),
        "au_pro_0.3": result.headline,
        "i_auroc": result.i_auroc,
        "by_defect": result.by_defect,
        "bank_query_s": spent[0],
        "scans": len(paths),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="MVTec-layout data with the test split")
    parser.add_argument("--runs", type=Path, required=True, help="folder of trained run folders")
    parser.add_argument("--run-suffix", default="", help="run folder = RUNS/<category><suffix>")
    parser.add_argument("--categories", nargs="+", required=True)
    parser.add_argument(
        "--variants", nargs="+", default=["bank_eps=0", "bank_eps=1"], help="e.g. bank_eps=0 normals=lapack"
    )
    parser.add_argument("--jsonl", type=Path, help="append one JSON line per category and variant")
    args = parser.parse_args()
    for category in args.categories:
        for text in args.variants:
            run = args.runs / f"{category}{args.run_suffix}"
            row = evaluate(args.data, category, run, parse_variant(text))
            if args.jsonl:
                with open(args.jsonl, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
            print(
                f"{category:10s} {text:28s}  AU-PRO@0.3 {row['au_pro_0.3']:.4f}  "
                f"image AUROC {row['i_auroc']:.4f}  bank queries {row['bank_query_s']:.2f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
