"""How the fused score's weights were chosen: AU-PRO and I-AUROC per weight pair, on trained runs.

Scores the test split of already trained categories (run folders of `st3d-edge train`, fused
scoring) with several (student, geometric) weight pairs; the standardisation stays the one
fitted on each run's validation scans. Use it on the tuning categories only (see
benchmarks/accuracy.py's TUNED); the held-out ones are for the accuracy benchmark.

    python benchmarks/fusion_weights.py --data DATA --runs RUNS --categories tire foam bracket cookie
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

WEIGHTS = ((1.0, 0.0), (0.0, 1.0), (0.25, 1.0), (0.5, 1.0), (1.0, 1.0), (1.0, 0.5))


def main() -> None:
    from st3d_edge.calibration.scoring import Scoring
    from st3d_edge.data.mvtec import read_scan, scan_paths
    from st3d_edge.evaluation.runner import ModelPointScorer, evaluate_scans

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--categories", nargs="+", required=True)
    args = parser.parse_args()

    print(f"{'category':10} " + " ".join(f"{f'{a:g}/{b:g}':>13}" for a, b in WEIGHTS))
    means = {w: [] for w in WEIGHTS}
    for category in args.categories:
        scorer = ModelPointScorer(args.runs / category, scoring="fused")
        fitted = scorer.scoring
        scans = [read_scan(p) for p in scan_paths(args.data, category, "test")]
        cells = []
        for a, b in WEIGHTS:
            fusion = dataclasses.replace(fitted.fusion, student_weight=a, geometric_weight=b)
            scorer.scoring = Scoring("fused", fitted.geometric, fusion)
            result = evaluate_scans(iter(scans), scorer, category=category, progress=False)
            means[(a, b)].append((result.headline, result.i_auroc))
            cells.append(f"{result.headline:.3f}/{result.i_auroc:.3f}")
        print(f"{category:10} " + " ".join(f"{c:>13}" for c in cells), flush=True)
    mean_cells = [
        f"{sum(x for x, _ in v) / len(v):.3f}/{sum(y for _, y in v) / len(v):.3f}" for v in means.values()
    ]
    print(f"{'mean':10} " + " ".join(f"{c:>13}" for c in mean_cells))
    print("cells: AU-PRO@0.3 / I-AUROC; columns: student weight / geometric weight")


if __name__ == "__main__":
    main()
