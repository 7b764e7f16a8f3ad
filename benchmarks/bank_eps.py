"""What the approximate bank query costs in accuracy: fused AU-PRO and image AUROC per bank_eps.

The geometric score's bank query (``GeometricSettings.bank_eps``, cKDTree's ``eps``) returns a
bank entry at most 1 + eps times farther than the nearest. This script evaluates trained run
folders on an MVTec-layout test split with the same runs, scans and sampled points for each eps
(only the bank query differs), through the evaluation's own pipeline (``evaluate_scans``), and
times the bank queries of each pass.

    python benchmarks/bank_eps.py --data TEST --runs RUNS --run-suffix=-s4000 \\
        --categories bagel carrot ... [--eps 0 1] [--jsonl F]

Synthetic data only: no accuracy figure here is MVTec 3D-AD's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path


def evaluate(data: Path, category: str, run: Path, eps: float) -> dict:
    """One category's fused AU-PRO@0.3, image AUROC and bank-query seconds at ``eps``."""
    from st3d_edge.data.mvtec import read_scan, scan_paths
    from st3d_edge.evaluation.runner import ModelPointScorer, evaluate_scans

    scorer = ModelPointScorer(run, scoring="fused")
    geometric = scorer.scoring.geometric
    geometric.settings = dataclasses.replace(geometric.settings, bank_eps=eps)
    spent = [0.0]
    query = geometric.bank.distances

    def timed(descriptors, eps=0.0):
        start = time.perf_counter()
        out = query(descriptors, eps)
        spent[0] += time.perf_counter() - start
        return out

    geometric.bank.distances = timed
    paths = scan_paths(data, category, "test")
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
        "bank_eps": eps,
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
    parser.add_argument("--eps", nargs="+", type=float, default=[0.0, 1.0])
    parser.add_argument("--jsonl", type=Path, help="append one JSON line per category and eps")
    args = parser.parse_args()
    rows = []
    for category in args.categories:
        for eps in args.eps:
            row = evaluate(args.data, category, args.runs / f"{category}{args.run_suffix}", eps)
            rows.append(row)
            if args.jsonl:
                with open(args.jsonl, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
            print(
                f"{category:10s} eps {eps:4.2f}  AU-PRO@0.3 {row['au_pro_0.3']:.4f}  "
                f"image AUROC {row['i_auroc']:.4f}  bank queries {row['bank_query_s']:.2f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
