"""The geometric score's settings: how many neighbours FPFH reads and how large the memory bank
is, against the fused score's accuracy (and BTF's, whose settings follow only where they make it
stronger), and the descriptor's cost.

FPFH reads at most ``feature_nn`` neighbours within ``5 s`` (Open3D's hybrid search; at the
model's spacing the radius never binds, so ``feature_nn`` is the neighbourhood). The bank keeps
``fraction`` of the training descriptors by greedy coreset selection (at most
``calibration.geometric.MAX_BANK`` for the shipped score). For each (count, fraction), on already
trained categories (run folders of ``st3d-edge train``; the student is not retrained, it does not
depend on either): the bank is refitted from the training scans' sampled points, the fusion's
standardisation from the validation scans, then the test split is scored with the shipped fusion
weights and image score. Use it on the tuning categories only (see benchmarks/accuracy.py's
TUNED); the held-out ones are for the accuracy benchmark.

``--time-points N`` also times the kNN graph and the descriptor on the runtime benchmark's scan
sampled to ``N`` points, per count (median of ``--repeats``, one process, the counts interleaved).

    python benchmarks/geometric_settings.py --data DATA --runs RUNS --categories tire foam bracket cookie \
        --feature-nn 100 48 32 --coreset-fractions 0.1 [--btf] [--run-suffix=-s4000] [--time-points 64000]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def sampled_points(scorer, paths) -> list[np.ndarray]:
    """The points the model samples of each scan (the same sampler and count as training)."""
    from st3d_edge.data.mvtec import read_scan
    from st3d_edge.geometry.sampling import sample_indices

    out = []
    for path in paths:
        points = read_scan(path).points
        out.append(np.ascontiguousarray(points[sample_indices(points, scorer.n, scorer.sampler)], np.float32))
    return out


def accuracy(args) -> None:
    from st3d_edge.calibration.fusion import fit_fusion
    from st3d_edge.calibration.geometric import GeometricScore
    from st3d_edge.calibration.scoring import FOLDER, IMAGE_NEIGHBOURS
    from st3d_edge.data.mvtec import good_scan_paths, read_scan, scan_paths
    from st3d_edge.evaluation.btf import IMAGE_NEIGHBOURS as BTF_IMAGE_NEIGHBOURS
    from st3d_edge.evaluation.btf import fit_btf_for_category
    from st3d_edge.evaluation.runner import ModelPointScorer, evaluate_scans

    image_neighbours = IMAGE_NEIGHBOURS["fused"]
    settings = [(nn, f) for nn in args.feature_nn for f in args.coreset_fractions]
    columns = [("fused", *v) for v in settings] + ([("BTF", *v) for v in settings] if args.btf else [])
    totals = {c: [] for c in columns}
    print(f"{'category':10} " + " ".join(f"{f'{m} {nn} {f:g}':>15}" for m, nn, f in columns))
    for category in args.categories:
        run = args.runs / f"{category}{args.run_suffix}"
        scorer = ModelPointScorer(run, scoring="student")
        shipped = GeometricScore.load(run / FOLDER).settings
        train = sampled_points(scorer, good_scan_paths(args.data, category, "train"))
        val_scans = [read_scan(p) for p in good_scan_paths(args.data, category, "validation")]
        tests = [read_scan(p) for p in scan_paths(args.data, category, "test")]
        val = [scorer(scan.points) for scan in val_scans]
        test = [scorer(scan.points) for scan in tests]

        def evaluate(point_scorer, neighbours, tests=tests, category=category):
            result = evaluate_scans(
                iter(tests),
                point_scorer,
                category=category,
                progress=False,
                image_neighbours=neighbours,
                map_sigma=args.map_sigma,
            )
            return result.headline, result.i_auroc

        cells = []
        for nn, fraction in settings:
            geometric = GeometricScore.fit(train, replace(shipped, feature_nn=nn), fraction)
            val_geo = [geometric(scan.points[idx]) for scan, (idx, _, _) in zip(val_scans, val, strict=True)]
            fusion = fit_fusion(np.concatenate([st for _, _, st in val]), np.concatenate(val_geo))
            queue = iter(test)

            def fused(points, queue=queue, geometric=geometric, fusion=fusion):
                idx, knn, student = next(queue)
                return idx, knn, fusion(student, geometric(points[idx]))

            cells.append(evaluate(fused, image_neighbours))
        for nn, fraction in settings if args.btf else []:
            m = (scorer.n, scorer.k, scorer.sampler)
            btf = fit_btf_for_category(args.data, category, *m, coreset_fraction=fraction, feature_nn=nn)
            cells.append(evaluate(btf, BTF_IMAGE_NEIGHBOURS))
        for column, cell in zip(columns, cells, strict=True):
            totals[column].append(cell)
        print(f"{category:10} " + " ".join(f"{f'{a:.3f}/{b:.3f}':>15}" for a, b in cells), flush=True)
    means = [f"{np.mean([a for a, _ in v]):.3f}/{np.mean([b for _, b in v]):.3f}" for v in totals.values()]
    print(f"{'mean':10} " + " ".join(f"{c:>15}" for c in means))
    print("columns: method, FPFH neighbours, coreset fraction; cells: AU-PRO@0.3 / I-AUROC")


def timing(args) -> None:
    import tempfile

    from st3d_edge.data import synthetic
    from st3d_edge.data.mvtec import read_scan
    from st3d_edge.geometry.fpfh import FEATURE_RADIUS_S, NORMAL_NN, NORMAL_RADIUS_S, fpfh, neighbour_count
    from st3d_edge.geometry.knn import knn_and_nearest
    from st3d_edge.geometry.sampling import sample_indices
    from st3d_edge.runtime.spacing import scan_spacing

    with tempfile.TemporaryDirectory(prefix="st3d-fpfh-nn-") as tmp:
        # the scan of benchmarks/runtime.py: an 800 x 800 tire with one dent
        synthetic.write_dataset(
            Path(tmp),
            categories=["tire"],
            train=0,
            validation=0,
            test_good=0,
            test_defect=1,
            size=(800, 800),
            seed=0,
            progress=False,
            defects=[synthetic.DEFECTS[0]],
        )
        scan = read_scan(next(Path(tmp).glob("tire/test/*/xyz/*.tiff")))
    points = np.ascontiguousarray(
        scan.points[sample_indices(scan.points, args.time_points, "fps")], np.float32
    )
    knn, _ = knn_and_nearest(points, args.k, args.k)
    s = scan_spacing(points, knn)
    times = {nn: [] for nn in args.feature_nn}
    for _ in range(args.repeats):
        for nn in args.feature_nn:
            start = time.perf_counter()
            _, nearest = knn_and_nearest(points, args.k, neighbour_count(NORMAL_NN, nn))
            fpfh(points, NORMAL_RADIUS_S * s, FEATURE_RADIUS_S * s, feature_nn=nn, neighbours=nearest)
            times[nn].append(time.perf_counter() - start)
    for nn, t in times.items():
        print(
            f"nn {nn:4d}: kNN graph (k = {args.k}) + FPFH {np.median(t) * 1e3:7.0f} ms median, "
            f"spread {min(t) * 1e3:.0f}-{max(t) * 1e3:.0f} ms ({len(points)} points)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--runs", type=Path)
    parser.add_argument("--run-suffix", default="", help="run folder = RUNS/<category><suffix>")
    parser.add_argument("--categories", nargs="+", default=[])
    parser.add_argument("--feature-nn", nargs="+", type=int, default=[100])
    parser.add_argument("--coreset-fractions", nargs="+", type=float, default=[0.1])
    parser.add_argument(
        "--map-sigma", type=float, default=0.0, help="map blur (0: raw maps, as the seed tables)"
    )
    parser.add_argument("--btf", action="store_true", help="BTF at each setting as well")
    parser.add_argument("--time-points", type=int, default=0)
    parser.add_argument("--k", type=int, default=32, help="the network's kNN in the timing")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.categories:
        accuracy(args)
    if args.time_points:
        timing(args)


if __name__ == "__main__":
    main()
