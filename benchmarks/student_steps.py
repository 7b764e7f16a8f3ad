"""Accuracy by the student's training length: the cpu preset's students at a given step budget.

For each category of an MVTec-layout dataset, trains the shipped-teacher student (and, with
``--random-teacher``, the paper's random-teacher ablation) for ``--steps`` optimizer steps,
evaluates the shipped scorer (``fused``) and 3D-ST alone (``student``) on the test split, and
appends one JSON line per category to ``--jsonl``: AU-PRO@0.3 and image AUROC per scoring (and
per defect type, each against the good scans alone), the training seconds and the final
validation loss; ``--btf`` adds the BTF peer baseline on the same sampled points. Everything else
is the accuracy benchmark's (``benchmarks/accuracy.py``): same preset, same shipped teacher, same
evaluation. This is how the cpu preset's step budget was checked (README, "Student training
length"):

    python benchmarks/student_steps.py --data DATA --runs RUNS --steps 4000 --jsonl steps.jsonl \
        [--random-teacher] [--btf] [--map-sigma 0] [--categories ...]

``--map-sigma 0`` scores raw maps, as the accuracy tables made before the map blur did.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path


def last_val_loss(run: Path) -> float:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return float(json.loads(lines[-1])["val_loss"])


def summary(result) -> dict:
    return {"au_pro_0.3": result.headline, "i_auroc": result.i_auroc, "by_defect": result.by_defect}


def main() -> None:
    import torch

    from st3d_edge.config import get_preset
    from st3d_edge.evaluation.btf import evaluate_btf
    from st3d_edge.evaluation.maps import MAP_SIGMA
    from st3d_edge.evaluation.runner import evaluate_category
    from st3d_edge.teachers import shipped_teacher
    from st3d_edge.train.student import train_category

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=Path, required=True, help="work folder for the run folders")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--jsonl", type=Path, required=True, help="one line per category is appended")
    parser.add_argument("--categories", nargs="+", default=None)
    parser.add_argument("--random-teacher", action="store_true", help="the random-teacher ablation")
    parser.add_argument("--btf", action="store_true", help="also fit and evaluate the BTF baseline")
    parser.add_argument("--map-sigma", type=float, default=MAP_SIGMA)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    preset = get_preset("cpu")
    preset.student.steps = args.steps
    teacher = None
    scorings = ("fused", "student")
    if args.random_teacher:
        preset.student.random_teacher = True
        preset.model.scoring = "student"  # an ablation of 3D-ST: no bank to fit
        scorings = ("student",)
    else:
        teacher = shipped_teacher(preset)
    categories = args.categories or sorted(p.name for p in args.data.iterdir() if p.is_dir())
    suffix = "-random" if args.random_teacher else ""
    for category in categories:
        run = args.runs / f"{category}{suffix}-s{args.steps}"
        start = time.perf_counter()
        train_category(
            run,
            copy.deepcopy(preset),
            data_root=args.data,
            category=category,
            teacher_dir=teacher,
            overwrite=True,
            progress=False,
        )
        record = {
            "category": category,
            "steps": args.steps,
            "random_teacher": args.random_teacher,
            "map_sigma": args.map_sigma,
            "train_seconds": round(time.perf_counter() - start, 1),
            "val_loss": last_val_loss(run),
        }
        for scoring in scorings:
            result = evaluate_category(
                args.data,
                category,
                run,
                method=scoring,
                scoring=scoring,
                progress=False,
                map_sigma=args.map_sigma,
            )
            record[scoring] = summary(result)
        if args.btf:
            m = preset.model
            result = evaluate_btf(
                args.data, category, m.n, m.k, sampler=m.sampler, progress=False, map_sigma=args.map_sigma
            )
            record["btf"] = summary(result)
        with open(args.jsonl, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
