"""How the shipped teacher's pretraining scenes were chosen: one teacher per variant, then 3D-ST.

For each variant a cpu-preset teacher is pretrained (``--epochs``, default 16, so that variants
are cheap to compare) and a 3D-ST student (the student's error alone, no geometric score) is
trained on every category given, evaluated with the shared runner. It prints the effective rank
of each teacher's features on its validation scenes (:mod:`st3d_edge.evaluation.feature_rank`)
and AU-PRO@0.3 / I-AUROC per category and mean. ``random`` is the randomly initialised teacher
of the paper's ablation (no pretraining).

Use it on the tuning categories only (benchmarks/accuracy.py's TUNED: tire, foam, bracket,
cookie); the held-out ones are for the accuracy benchmark.

    python benchmarks/teacher_scenes.py --data DATA --out OUT [--variants depth mixed random]
        [--categories tire foam bracket cookie] [--epochs 16] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
from accuracy import TUNED  # the tuning categories, benchmarks/accuracy.py's

VARIANTS = ("depth", "mixed", "surface", "random")


def main() -> None:
    import torch

    from st3d_edge.config import get_preset
    from st3d_edge.evaluation.runner import evaluate_category
    from st3d_edge.train.pretrain import DIAGNOSTICS, pretrain
    from st3d_edge.train.student import train_category

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["depth", "mixed", "random"])
    parser.add_argument("--categories", nargs="+", default=list(TUNED))
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    for variant in args.variants:
        preset = get_preset("cpu")
        preset.model.scoring = "student"  # 3D-ST alone: the teacher is what differs
        teacher_dir, rank = None, float("nan")
        if variant == "random":
            preset.student.random_teacher = True
        else:
            preset.pretrain.scenes, preset.pretrain.epochs = variant, args.epochs
            teacher_dir = args.out / variant / "teacher"
            pretrain(teacher_dir, preset, overwrite=True, progress=False)
            rank = json.loads((teacher_dir / DIAGNOSTICS).read_text())["effective_rank"]
        cells = []
        for category in args.categories:
            run = args.out / variant / category
            train_category(
                run,
                copy.deepcopy(preset),
                data_root=args.data,
                category=category,
                teacher_dir=teacher_dir,
                overwrite=True,
                progress=False,
            )
            result = evaluate_category(args.data, category, run, scoring="student", progress=False)
            cells.append((result.headline, result.i_auroc))
            print(f"{variant:8} {category:10} {result.headline:.3f} / {result.i_auroc:.3f}", flush=True)
        mean = np.mean(cells, axis=0)
        print(f"{variant:8} {'mean':10} {mean[0]:.3f} / {mean[1]:.3f}   effective rank {rank:.2f}")


if __name__ == "__main__":
    main()
