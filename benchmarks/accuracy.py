"""Accuracy on synthetic MVTec-format data: 3D-ST, its two paper ablations, and a peer baseline.

Pipeline, all in one process and seeded (rerunning gives the same numbers on the same machine):

1. synthetic data in MVTec 3D-AD layout for every category (``st3d_edge.data.synthetic``);
2. two teachers pretrained with the ``cpu`` preset: the normal one, and one with absolute
   coordinates in the LFA input (the paper's ablation needs its own teacher);
3. per category three students (``cpu`` preset): with the pretrained teacher (3D-ST), with a
   randomly initialised teacher (ablation), and with the absolute-coordinates teacher (ablation);
4. the geometry-only "Back to the Feature" baseline (FPFH + memory bank) on the same sampled
   points;
5. each scored by the shared evaluation runner: harmonic interpolation to full maps, AU-PRO
   (headline limit 0.3) and image AUROC.

Default settings (the full run; budget: under 45 minutes on 2 CPU cores):
  7 categories, 128 x 128 scans, per category 20 train / 5 validation / 10 good test scans and
  2 scans per defect type (10 defective test scans); the ``cpu`` preset exactly as documented in
  ``st3d_edge.config`` (teacher and students at the preset's epochs; ``--teacher-epochs`` /
  ``--student-epochs`` override them). Measured on an idle 2-core machine: a cpu-preset teacher
  pretrains in about 1.5 minutes and a student trains in about 20 seconds, so the whole run
  (2 teachers, 21 students, 28 evaluations) takes roughly 15 minutes.
``--quick`` is a smoke run of the same code path (1 category, 64 x 64 scans, n = 512, k = 16,
a few scenes and epochs) that takes a few minutes; its numbers say nothing about accuracy.
``--sampler fps-tiled`` runs everything with the tiled sampler, to compare AU-PRO with exact vs
tiled FPS at otherwise equal settings. ``--harmonic-timing`` only times the harmonic
interpolation of an 800 x 800 map against a direct sparse solve and exits.

    python benchmarks/accuracy.py [--out DIR] [--quick] [--sampler fps|fps-tiled] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ("3D-ST", "random teacher", "absolute coords", "BTF (FPFH)")


def settings(args):
    from st3d_edge.config import get_preset

    preset = get_preset("cpu")
    preset.model.sampler = args.sampler
    preset.pretrain.seed = preset.student.seed = args.seed
    data = dict(train=20, validation=5, test_good=10, test_defect=2, size=(128, 128))
    categories = None  # all
    if args.quick:
        preset.model.n, preset.model.k = 512, 16
        preset.pretrain.scenes_train, preset.pretrain.scenes_val = 6, 2
        preset.pretrain.objects_per_scene = 4
        preset.pretrain.epochs = 2
        preset.student.epochs = 4
        data = dict(train=4, validation=2, test_good=3, test_defect=1, size=(64, 64))
        categories = ["tire"]
    if args.categories:
        categories = args.categories
    if args.teacher_epochs:
        preset.pretrain.epochs = args.teacher_epochs
    if args.student_epochs:
        preset.student.epochs = args.student_epochs
    return preset, data, categories


def run(args) -> dict:
    import torch

    from st3d_edge.data.synthetic import CATEGORIES, write_dataset
    from st3d_edge.evaluation.btf import evaluate_btf
    from st3d_edge.evaluation.runner import evaluate_category
    from st3d_edge.train.pretrain import pretrain
    from st3d_edge.train.student import train_category

    torch.set_num_threads(args.threads)
    preset, data_settings, categories = settings(args)
    categories = list(categories or CATEGORIES)
    out = args.out
    clock: dict[str, float] = {}

    def timed(name, fn, *a, **kw):
        start = time.perf_counter()
        value = fn(*a, **kw)
        clock[name] = clock.get(name, 0.0) + time.perf_counter() - start
        return value

    data = timed(
        "synthetic data", write_dataset, out / "data", categories=categories, seed=args.seed, **data_settings
    )
    runs = out / "runs"
    teacher = timed("pretrain teacher", pretrain, runs / "teacher", preset, overwrite=True).run_dir
    abs_preset = _copy(preset)
    abs_preset.model.absolute_coords = True
    abs_teacher = timed(
        "pretrain teacher (absolute coords)", pretrain, runs / "teacher-abs", abs_preset, overwrite=True
    )

    results: dict[str, list] = {m: [] for m in METHODS}
    for category in categories:
        variants = (
            ("3D-ST", category, preset, teacher, False),
            ("random teacher", f"{category}-random", preset, None, True),
            ("absolute coords", f"{category}-abs", abs_preset, abs_teacher.run_dir, False),
        )
        for method, run_name, variant, teacher_dir, random_teacher in variants:
            chosen = _copy(variant)
            chosen.student.random_teacher = random_teacher
            timed(
                f"train ({method})",
                train_category,
                runs / run_name,
                chosen,
                data_root=data,
                category=category,
                teacher_dir=teacher_dir,
                overwrite=True,
            )
            result = timed(
                f"evaluate ({method})", evaluate_category, data, category, runs / run_name, method=method
            )
            results[method].append(result)
        m = preset.model
        results["BTF (FPFH)"].append(
            timed("fit + evaluate (BTF)", evaluate_btf, data, category, m.n, m.k, sampler=m.sampler)
        )
    return {"results": results, "clock": clock, "preset": preset, "data": data_settings}


def _copy(preset):
    import copy

    return copy.deepcopy(preset)


def table(results: dict[str, list]) -> str:
    from st3d_edge.evaluation.report import mean_result

    categories = [r.category for r in results["3D-ST"]]
    head = f"{'category':10}" + "".join(f" | {m[:16]:>16} {'':>7}" for m in METHODS)
    sub = f"{'':10}" + "".join(f" | {'AU-PRO@0.3':>16} {'I-AUROC':>7}" for _ in METHODS)
    lines = [head, sub, "-" * len(sub)]
    rows = [(c, {m: results[m][i] for m in METHODS}) for i, c in enumerate(categories)]
    rows.append(("mean", {m: mean_result(results[m]) for m in METHODS}))
    for name, by_method in rows:
        cells = "".join(f" | {by_method[m].headline:16.3f} {by_method[m].i_auroc:7.3f}" for m in METHODS)
        lines.append(f"{name:10}{cells}")
    return "\n".join(lines)


def report_json(outcome: dict, args) -> dict:
    from st3d_edge.config import to_dict
    from st3d_edge.evaluation.report import report_dict

    return {
        "kind": "smoke run (--quick): not an accuracy figure" if args.quick else "full run",
        "sampler": args.sampler,
        "threads": args.threads,
        "seed": args.seed,
        "preset": to_dict(outcome["preset"]),
        "data": {k: list(v) if isinstance(v, tuple) else v for k, v in outcome["data"].items()},
        "seconds": outcome["clock"],
        "methods": {m: report_dict(rs) for m, rs in outcome["results"].items()},
    }


def harmonic_timing(repeats: int) -> None:
    """Harmonic fill of an 800 x 800 map with 64000 known pixels vs a direct sparse solve."""
    from scipy.sparse.linalg import spsolve

    from st3d_edge.evaluation import harmonic

    rng = np.random.default_rng(0)
    size = 800
    rows, cols = np.mgrid[0:size, 0:size]
    layouts = {
        "uniform": np.ones((size, size), bool),
        "object (disk, 44% of the image)": (rows - 400) ** 2 + (cols - 380) ** 2 < 300**2,
    }
    print(f"harmonic interpolation, {size}x{size}, 64000 known pixels; seconds over {repeats} repeats")
    # Both solvers are single-threaded, so CPU seconds approximate the wall time of an idle machine.
    print("wall seconds (median, p90); cpu: CPU seconds of this process (median)")
    print(f"{'layout':34} {'method':30} {'median':>7} {'p90':>7} {'cpu':>6} {'ratio':>6}")
    for name, region in layouts.items():
        known = np.zeros((size, size), bool)
        known.flat[rng.choice(np.flatnonzero(region), 64000, replace=False)] = True
        values = rng.random((size, size))

        def direct(values=values, known=known):
            out = np.where(known, values, 0.0)
            matrix, rhs = harmonic._laplace_system(out, known, ~known)
            out[~known] = spsolve(matrix.tocsc(), rhs)
            return out

        timings = {}
        for label, fn in (("direct spsolve (baseline)", direct), ("harmonic_fill (float32 AMG, 1e-6)", None)):
            seconds, cpu = [], []
            for _ in range(repeats):
                start, start_cpu = time.perf_counter(), time.process_time()
                _ = fn() if fn else harmonic.harmonic_fill(values, known)
                seconds.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
            timings[label] = (np.array(seconds), np.array(cpu))
        base = np.median(timings["direct spsolve (baseline)"][0])
        for label, (seconds, cpu) in timings.items():
            median, p90 = np.median(seconds), np.percentile(seconds, 90)
            print(f"{name:34} {label:30} {median:7.2f} {p90:7.2f} {np.median(cpu):6.2f} {base / median:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("accuracy.json"),
        help="the table as JSON; a PNG of AU-PRO vs limit beside it",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 category, tiny data and epochs")
    parser.add_argument("--sampler", choices=("fps", "fps-tiled"), default="fps")
    parser.add_argument("--categories", nargs="+", default=None, help="subset of the synthetic categories")
    parser.add_argument("--teacher-epochs", type=int, default=None, help="override the teacher epochs")
    parser.add_argument("--student-epochs", type=int, default=None, help="override the student epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--harmonic-timing", action="store_true", help="only time the harmonic fill")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of --harmonic-timing")
    args = parser.parse_args()
    if args.harmonic_timing:
        harmonic_timing(args.repeats)
        return

    from st3d_edge.evaluation.report import plot_pro_vs_limit
    from st3d_edge.io_utils import write_json_atomic

    with tempfile.TemporaryDirectory() as tmp:
        args.out = args.out or Path(tmp)
        start = time.perf_counter()
        outcome = run(args)
        total = time.perf_counter() - start
    report = report_json(outcome, args)
    report["seconds"]["total"] = total
    write_json_atomic(args.json, report)
    plot = plot_pro_vs_limit(outcome["results"], args.json.with_name(args.json.stem + "_pro_vs_limit.png"))
    label = "SMOKE RUN (--quick), not an accuracy figure" if args.quick else "full run"
    print(f"accuracy on synthetic data, {label}; sampler {args.sampler}; {args.threads} thread(s)")
    print(table(outcome["results"]))
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in report["seconds"].items()))
    print(f"wrote {args.json} and {plot}")


if __name__ == "__main__":
    main()
