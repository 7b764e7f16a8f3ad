"""How the fused score was chosen: AU-PRO and I-AUROC per standardisation, weight pair and
image-score neighbour count.

Scores the test split of already trained categories (run folders of `st3d-edge train`) once per
scan (sampled points, the student's error, the geometric score), then evaluates every variant
of the fusion on those same numbers: the standardisation (``std``: mean and standard deviation
of the good validation points; ``tail``: median and the distance from it to the 99.9th
percentile), the (student, geometric) weights and the image score's neighbour count (``--image-neighbours``;
the pixel maps, hence AU-PRO, do not depend on it). Use it on the tuning categories only (see
benchmarks/accuracy.py's TUNED); the held-out ones are for the accuracy benchmark.

    python benchmarks/fusion_weights.py --data DATA --runs RUNS --categories tire foam bracket cookie \
        [--image-neighbours 8 1] [--weights 1/1 1/0.5] [--standardisations tail]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

WEIGHTS = ((1.0, 0.0), (0.0, 1.0), (0.25, 1.0), (0.5, 1.0), (1.0, 1.0))
STANDARDISATIONS = ("std", "tail")


def weight_pair(text: str) -> tuple[float, float]:
    student, geometric = text.split("/")
    return float(student), float(geometric)


def components(scorer, geometric, scans):
    """(idx, knn, student scores, geometric scores) of every scan, computed once."""
    out = []
    for scan in scans:
        idx, knn, student = scorer(scan.points)
        out.append((idx, knn, student, geometric(scan.points[idx])))
    return out


def main() -> None:
    from st3d_edge.calibration.fusion import fit_fusion
    from st3d_edge.calibration.geometric import GeometricScore
    from st3d_edge.calibration.scoring import FOLDER
    from st3d_edge.data.mvtec import good_scan_paths, read_scan, scan_paths
    from st3d_edge.evaluation.runner import ModelPointScorer, evaluate_scans

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--categories", nargs="+", required=True)
    parser.add_argument("--image-neighbours", nargs="+", type=int, default=[8, 1])
    parser.add_argument(
        "--weights",
        nargs="+",
        type=weight_pair,
        default=list(WEIGHTS),
        help="(student, geometric) weight pairs as S/G, e.g. 1/1 1/0.5",
    )
    parser.add_argument("--standardisations", nargs="+", choices=STANDARDISATIONS, default=STANDARDISATIONS)
    args = parser.parse_args()

    variants = [
        (how, w, m) for m in args.image_neighbours for how in args.standardisations for w in args.weights
    ]
    print(f"{'category':10} " + " ".join(f"{f'{h} {a:g}/{b:g} nn{m}':>19}" for h, (a, b), m in variants))
    totals = {v: [] for v in variants}
    for category in args.categories:
        run = args.runs / category
        scorer = ModelPointScorer(run, scoring="student")
        geometric = GeometricScore.load(run / FOLDER)
        val_scans = [read_scan(p) for p in good_scan_paths(args.data, category, "validation")]
        val = components(scorer, geometric, val_scans)
        tests = [read_scan(p) for p in scan_paths(args.data, category, "test")]
        test = components(scorer, geometric, tests)
        st_val = np.concatenate([c[2] for c in val])
        geo_val = np.concatenate([c[3] for c in val])
        cells = []
        for how, weights, neighbours in variants:
            fusion = fit_fusion(st_val, geo_val, weights, standardisation=how)
            queue = iter(test)

            def cached(points, queue=queue, fusion=fusion):
                idx, knn, student, geo = next(queue)
                return idx, knn, fusion(student, geo)

            result = evaluate_scans(
                iter(tests), cached, category=category, progress=False, image_neighbours=neighbours
            )
            totals[(how, weights, neighbours)].append((result.headline, result.i_auroc))
            cells.append(f"{result.headline:.3f}/{result.i_auroc:.3f}")
        print(f"{category:10} " + " ".join(f"{c:>19}" for c in cells), flush=True)
    means = [f"{np.mean([x for x, _ in v]):.3f}/{np.mean([y for _, y in v]):.3f}" for v in totals.values()]
    print(f"{'mean':10} " + " ".join(f"{c:>19}" for c in means))
    print(
        "cells: AU-PRO@0.3 / I-AUROC; columns: standardisation, student weight / geometric weight, "
        "image-score neighbours"
    )


if __name__ == "__main__":
    main()
