"""Acceptance check of training: do trained students score defect points above good points?

Pipeline at the ``cpu`` preset on synthetic data (one category, default ``tire``):
synthetic dataset -> teacher pretraining -> student with the pretrained teacher -> student with a
random teacher (the paper's ablation, Figure 7). Each test scan is reduced to n points with the
preset's sampler; a sampled point is a defect point when its pixel is in the ground-truth mask.
Reported per model: mean score on defect points / mean score on good points (good points of
all test scans, good and defective), and the point-level AUROC (probability that a random defect
point outranks a random good point, ties counted half). Everything is seeded: rerunning gives
the same numbers on the same machine.

    python benchmarks/separation.py [--out DIR] [--category tire] [--size 128] [--threads 2]

Measured on a 2-core CPU (defaults: tire, 128 px, 20 train / 5 validation / 15 test scans):

    model                 defect/good mean  point AUROC  defect pts  good pts
    pretrained teacher               2.473        0.915         197     30523
    random teacher                   2.038        0.883         197     30523
    seconds: synthetic data 1, pretrain 88, student (pretrained teacher) 22, student (random teacher) 20
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def point_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos * n_neg), with average ranks for ties."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    pos = labels.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_point_scores(run_dir: Path, data: Path, category: str):
    """(scores, is_defect) of the sampled points of every test scan, scored by the run's model."""
    import torch

    from st3d_edge.data.mvtec import read_scan, scan_paths
    from st3d_edge.geometry.knn import knn_indices
    from st3d_edge.geometry.sampling import sample_indices
    from st3d_edge.model.scorer import Scorer
    from st3d_edge.train.category_model import load_category

    teacher, student, s, mu, sigma, preset = load_category(run_dir)
    scorer = Scorer(teacher, student, s, mu, sigma).eval()
    scores, labels = [], []
    for path in scan_paths(data, category, "test"):
        scan = read_scan(path)
        idx = sample_indices(scan.points, preset.model.n, preset.model.sampler)
        points = np.ascontiguousarray(scan.points[idx])
        knn = knn_indices(points, preset.model.k)
        with torch.no_grad():
            point_scores = scorer(torch.from_numpy(points), torch.from_numpy(knn.astype(np.int64)))
        rows, cols = scan.pixels[idx, 0], scan.pixels[idx, 1]
        gt = scan.gt[rows, cols] if scan.gt is not None else np.zeros(len(idx), dtype=bool)
        scores.append(point_scores.numpy())
        labels.append(gt)
    return np.concatenate(scores), np.concatenate(labels)


def separation(run_dir: Path, data: Path, category: str) -> dict:
    scores, labels = test_point_scores(run_dir, data, category)
    return {
        "ratio": float(scores[labels].mean() / scores[~labels].mean()),
        "auroc": point_auroc(scores, labels),
        "defect_points": int(labels.sum()),
        "good_points": int((~labels).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--category", default="tire")
    parser.add_argument("--size", type=int, default=128, help="synthetic scan size in pixels")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from st3d_edge.config import get_preset
    from st3d_edge.data.synthetic import write_dataset
    from st3d_edge.train.pretrain import pretrain
    from st3d_edge.train.student import train_category

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        clock = {}
        start = time.perf_counter()
        data = write_dataset(
            out / "data", categories=[args.category], size=(args.size, args.size), seed=args.seed
        )
        clock["synthetic data"] = time.perf_counter() - start

        preset = get_preset("cpu")
        preset.pretrain.seed = preset.student.seed = args.seed
        start = time.perf_counter()
        teacher = pretrain(out / "runs" / "teacher", preset, overwrite=True).run_dir
        clock["pretrain"] = time.perf_counter() - start

        results = {}
        for label, random_teacher in (("pretrained teacher", False), ("random teacher", True)):
            preset.student.random_teacher = random_teacher
            run = out / "runs" / (args.category + ("-random" if random_teacher else ""))
            start = time.perf_counter()
            train_category(
                run, preset, data_root=data, category=args.category, teacher_dir=teacher, overwrite=True
            )
            clock[f"student ({label})"] = time.perf_counter() - start
            results[label] = separation(run, data, args.category)

    print(f"separation on synthetic {args.category} ({args.size} px), cpu preset, {args.threads} thread(s)")
    print(f"{'model':20} {'defect/good mean':>17} {'point AUROC':>12} {'defect pts':>11} {'good pts':>9}")
    for label, r in results.items():
        print(
            f"{label:20} {r['ratio']:17.3f} {r['auroc']:12.3f} {r['defect_points']:11d} {r['good_points']:9d}"
        )
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in clock.items()))


if __name__ == "__main__":
    main()
