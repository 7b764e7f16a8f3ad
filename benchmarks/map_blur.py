"""AU-PRO by the blur of the anomaly maps, every method's maps blurred alike.

The published "Back to the Feature" code (and PatchCore's) blurs each anomaly map with a
Gaussian of sigma = 4 px on its 224 x 224 maps before computing AU-PRO; the evaluation runner
now does the same to every method (``st3d_edge.evaluation.maps.blur_map``: sigma in px of a
224-px map, scaled to the map's size). This script measures what that choice does: it scores
the raw (unblurred) maps of the test scans of an ``accuracy.py`` work folder once (the shipped
scorer, 3D-ST alone, the random-teacher ablation, and BTF refitted on the same training scans),
blurs every map with each sigma (0: raw), and reports AU-PRO at every limit per method and
category, tuned and held-out means apart. Image AUROC is unchanged by the blur (every image
score comes from the point scores) and is printed once for reference. Scores are cached per
category in ``--cache`` (``.npz``), so a rerun only recomputes the metrics.

    python benchmarks/map_blur.py --data DATA --runs OUT/runs [--categories ...]
        [--sigmas 0 1 2 4 8] [--cache DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from accuracy import TUNED  # the categories the shipped settings were chosen on

METHODS = {  # name: (run folder suffix, scoring)
    "3D-ST+FPFH": ("", "fused"),
    "3D-ST": ("", "student"),
    "random teacher": ("-random", "student"),
}
BTF = "BTF (FPFH)"


def score_category(data: Path, runs: Path, category: str) -> dict[str, np.ndarray]:
    """Full-resolution maps and image scores of every method on the category's test scans."""
    from st3d_edge.data.mvtec import read_scan, scan_paths
    from st3d_edge.evaluation.btf import IMAGE_NEIGHBOURS, fit_btf_for_category
    from st3d_edge.evaluation.runner import ModelPointScorer, score_scan  # raw maps, no blur

    scans = [read_scan(p) for p in scan_paths(data, category, "test")]
    out: dict[str, np.ndarray] = {
        "gt": np.stack([s.gt if s.gt is not None else np.zeros(s.valid.shape, bool) for s in scans]),
        "label": np.array([s.defect is not None for s in scans]),
    }
    scorers = {}
    for method, (suffix, scoring) in METHODS.items():
        scorer = ModelPointScorer(runs / f"{category}{suffix}", scoring=scoring)
        scorers[method] = (scorer, scorer.image_neighbours)
    model, _ = scorers["3D-ST+FPFH"]
    scorers[BTF] = (fit_btf_for_category(data, category, model.n, model.k, model.sampler), IMAGE_NEIGHBOURS)
    for method, (scorer, neighbours) in scorers.items():
        outcomes = [score_scan(s, scorer, neighbours) for s in scans]
        out[f"{method}/maps"] = np.stack([o.anomaly_map for o in outcomes]).astype(np.float32)
        out[f"{method}/image"] = np.array([o.image_score for o in outcomes])
    return out


def cached_scores(data: Path, runs: Path, category: str, cache: Path | None) -> dict[str, np.ndarray]:
    path = cache / f"{category}.npz" if cache else None
    if path is not None and path.exists():
        with np.load(path) as stored:
            return dict(stored)
    scores = score_category(data, runs, category)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **scores)
    return scores


def blurred_metrics(scores: dict[str, np.ndarray], method: str, sigma: float) -> dict[float, float]:
    from st3d_edge.evaluation.maps import blur_map
    from st3d_edge.evaluation.pro import LIMITS, au_pro_at_limits, pro_curve

    maps = [blur_map(m, sigma) for m in scores[f"{method}/maps"]]
    fpr, pro = pro_curve(maps, list(scores["gt"]))
    return au_pro_at_limits(fpr, pro, LIMITS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=Path, required=True, help="accuracy.py's <out>/runs")
    parser.add_argument("--categories", nargs="+", help="default: every category with a run folder")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0, 1, 2, 4, 8])
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from st3d_edge.evaluation.auroc import image_auroc

    categories = args.categories or sorted(
        p.name for p in args.runs.iterdir() if (args.runs / f"{p.name}-random").is_dir()
    )
    methods = [*METHODS, BTF]
    table: dict[str, dict] = {}
    for category in categories:
        scores = cached_scores(args.data, args.runs, category, args.cache)
        labels = list(scores["label"])
        table[category] = {
            method: {
                "i_auroc": image_auroc(list(scores[f"{method}/image"]), labels),
                "au_pro": {str(s): blurred_metrics(scores, method, s) for s in args.sigmas},
            }
            for method in methods
        }
        print(f"scored {category}", flush=True)

    groups = {
        "tuned": [c for c in categories if c in TUNED],
        "held out": [c for c in categories if c not in TUNED],
    }
    print("\nAU-PRO@0.3 by blur sigma (px of a 224-px map), then @0.01 / 0.05; I-AUROC is unchanged")
    for group, members in groups.items():
        if not members:
            continue
        print(f"\n{group}: {', '.join(members)}")
        for method in methods:
            cells = []
            for s in map(str, args.sigmas):
                at = {
                    lim: np.mean([table[c][method]["au_pro"][s][lim] for c in members])
                    for lim in (0.01, 0.05, 0.3)
                }
                cells.append(f"s={s}: {at[0.3]:.3f} ({at[0.01]:.3f}/{at[0.05]:.3f})")
            i_auroc = np.mean([table[c][method]["i_auroc"] for c in members])
            print(f"  {method:15s} " + "  ".join(cells) + f"  | I-AUROC {i_auroc:.3f}")
    if args.json:
        source = {"data": args.data.name, "runs": args.runs.name}  # names only, no machine paths
        report = {"source": source, "sigmas": args.sigmas, "tuned": groups["tuned"], "table": table}
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
