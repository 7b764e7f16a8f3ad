"""Image-level detection on a test split of any size: image-score variants of the shipped fused
score, and the BTF peer, on the same sampled points.

The accuracy tables test 8 good and 12 defective scans per family: 96 good/defective pairs, so
one misordered pair moves the image AUROC by 0.01 and a family's "0.03 behind" is three pairs.
This script scores trained run folders on any MVTec-layout test split (typically a fresh, larger
one: ``write_dataset(TEST, train=1, validation=0, test_good=30, test_defect=5, seed=...)``) and,
with ``--btf``, fits BTF on ``--train-data``'s training split (the scans the runs were trained
on) exactly as ``benchmarks/accuracy.py`` does. Point scores (the student's error, the geometric
score, the kNN graph) are computed once per scan; every column is an image score of them:

* ``shipped``: the fused score with the shipped image score (the highest 8-neighbour mean,
  ``calibration.scoring.IMAGE_NEIGHBOURS``), whatever count the run was calibrated with;
* ``fused max``: the same point scores, the highest point score;
* ``geometric max``: the fused score's geometric part alone (FPFH against the run's bank);
* ``student``: 3D-ST's error alone, highest 8-neighbour mean (the paper's score);
* ``BTF``: the peer (Open3D FPFH, its own bank, the highest point score: its strongest).

    python benchmarks/image_level.py --test-data TEST --train-data DATA --runs RUNS \\
        --run-suffix=-s4000 --categories ... [--btf] [--jsonl F]

One JSON line per category (image AUROC per column, overall and per defect type against the
good scans alone), then a table. Synthetic data only: no accuracy figure here is MVTec 3D-AD's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

COLUMNS = ("shipped", "fused max", "geometric max", "student", "BTF")


def image_scores(run: Path, scans: list, btf=None) -> dict[str, list[float]]:
    """Every column's image score of each scan (BTF's only when ``btf`` is given)."""
    from st3d_edge.calibration.scoring import IMAGE_NEIGHBOURS, load_scoring
    from st3d_edge.evaluation.btf import IMAGE_NEIGHBOURS as BTF_NEIGHBOURS
    from st3d_edge.evaluation.runner import ModelPointScorer
    from st3d_edge.geometry.smoothing import image_score

    scorer = ModelPointScorer(run, scoring="student")
    fused = load_scoring(run, "fused")
    shipped_neighbours, student_neighbours = IMAGE_NEIGHBOURS["fused"], IMAGE_NEIGHBOURS["student"]
    out: dict[str, list[float]] = {c: [] for c in COLUMNS if c != "BTF" or btf is not None}
    for scan in scans:
        idx, knn, student = scorer(scan.points)
        points = scan.points[idx]
        geometric = fused.geometric_scores(np.ascontiguousarray(points, dtype=np.float32))
        combined = fused.combine(student, geometric)

        def top(scores, neighbours, points=points, knn=knn):
            return float(image_score(points, scores, knn, neighbours=min(neighbours, knn.shape[1])))

        out["shipped"].append(top(combined, shipped_neighbours))
        out["fused max"].append(top(combined, 1))
        out["geometric max"].append(top(geometric, 1))
        out["student"].append(top(student, student_neighbours))
        if btf is not None:
            btf_idx, btf_knn, btf_scores = btf(scan.points)
            if not np.array_equal(btf_idx, idx):
                raise RuntimeError(f"{scan.path}: BTF sampled other points than the run")
            out["BTF"].append(top(btf_scores, BTF_NEIGHBOURS, knn=btf_knn))
    return out


def aurocs(scores: dict[str, list[float]], defects: list[str | None]) -> dict[str, dict]:
    """Image AUROC of every column, overall and per defect type against the good scans alone."""
    from st3d_edge.evaluation.auroc import image_auroc

    labels = np.array([d is not None for d in defects])
    kinds = sorted({d for d in defects if d is not None})
    result = {}
    for column, values in scores.items():
        values_arr = np.asarray(values)
        by_defect = {}
        for kind in kinds:
            keep = np.array([d is None or d == kind for d in defects])
            by_defect[kind] = image_auroc(list(values_arr[keep]), list(labels[keep]))
        result[column] = {"i_auroc": image_auroc(list(values_arr), list(labels)), "by_defect": by_defect}
    return result


def main() -> None:
    from st3d_edge.config import get_preset
    from st3d_edge.data.mvtec import read_scan, scan_paths
    from st3d_edge.evaluation.btf import fit_btf_for_category

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-data", type=Path, required=True, help="the test split's dataset")
    parser.add_argument("--train-data", type=Path, help="the runs' dataset (BTF's training split)")
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--run-suffix", default="", help="run folder = RUNS/<category><suffix>")
    parser.add_argument("--categories", nargs="+", required=True)
    parser.add_argument("--btf", action="store_true", help="also fit and score the BTF peer")
    parser.add_argument("--jsonl", type=Path)
    args = parser.parse_args()
    if args.btf and args.train_data is None:
        parser.error("--btf needs --train-data (the split BTF is fitted on)")

    table = []
    for category in args.categories:
        run = args.runs / f"{category}{args.run_suffix}"
        scans = [read_scan(p) for p in scan_paths(args.test_data, category, "test")]
        btf = None
        if args.btf:
            model = get_preset("cpu").model
            btf = fit_btf_for_category(args.train_data, category, model.n, model.k, sampler=model.sampler)
        defects = [scan.defect for scan in scans]
        record = {
            "category": category,
            "good": sum(d is None for d in defects),
            "defective": sum(d is not None for d in defects),
            **aurocs(image_scores(run, scans, btf), defects),
        }
        if args.jsonl:
            with open(args.jsonl, "a") as fh:
                fh.write(json.dumps(record) + "\n")
        table.append(record)
        print(json.dumps(record), flush=True)
    columns = [c for c in COLUMNS if c in table[0]]
    print(f"\n{'category':12}" + "".join(f"{c:>15}" for c in columns))
    for record in table:
        print(f"{record['category']:12}" + "".join(f"{record[c]['i_auroc']:15.3f}" for c in columns))
    means = [np.mean([r[c]["i_auroc"] for r in table]) for c in columns]
    print(f"{'mean':12}" + "".join(f"{m:15.3f}" for m in means))
    print("image AUROC; synthetic data")


if __name__ == "__main__":
    main()
