"""Seconds per training step (teacher pretraining and student) and peak memory, on the CPU.

Rows: the ``cpu`` preset (n = 2048, k = 16, d = 64, 8 receptive fields of m = 256 decoded points
per step, scenes of 5 objects) and the paper's size (n = 64000, k = 32, d = 64, 16 fields of
m = 1024, scenes of 10 objects). A pretraining step is one scene through the teacher, the
receptive fields decoded and compared by Chamfer distance, backward and an Adam step; a
student step is one cloud through the student against precomputed normalised teacher
features, backward and an Adam step (the teacher's features of a training cloud are
computed once per run, see st3d_edge.train.student).
The baseline, measured in the same process, is the same step with the network's obvious
formulation (``model.network.reference_forward``: gather to (n, k, c), concatenate, average);
it is skipped at n = 64000, where its (n, k, c) activations would need several GiB.

Peak memory is the process's RSS high-water mark after each row (rows run in increasing size,
so each figure bounds that row). Scenes are procedural (``data.scenes``), weights random
(seeded): the step time does not depend on the weights.

    python benchmarks/training.py [--threads 2] [--repeats 5] [--big-repeats 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _stats(times: list[float]) -> str:
    a = np.asarray(times)
    return f"{np.median(a):8.3f} {np.percentile(a, 90):8.3f}"


def make_cloud(n: int, k: int, objects: int, seed: int = 0):
    from st3d_edge.data.scenes import pretraining_scene
    from st3d_edge.train.cache import prepare_cloud

    raw = pretraining_scene(np.random.default_rng(seed), 4 * n, objects=objects)
    return prepare_cloud(raw, n, k, "fps")


def time_steps(step, repeats: int) -> list[float]:
    step()  # warm-up: first-call allocations and kernel compilation are not a step's cost
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def pretrain_step_fn(cloud, d: int, samples: int, decoder_points: int, obvious: bool):
    import torch

    from st3d_edge.model.decoder import Decoder
    from st3d_edge.model.network import DescriptorNet, reference_forward
    from st3d_edge.train.common import cloud_tensors
    from st3d_edge.train.pretrain import ReceptiveFieldLoss

    torch.manual_seed(0)
    teacher, decoder = DescriptorNet(d=d), Decoder(d, m=decoder_points)
    forward = (lambda p, q: reference_forward(teacher, p, q)) if obvious else teacher
    opt = torch.optim.Adam(
        list(teacher.parameters()) + list(decoder.parameters()), lr=1e-3, weight_decay=1e-6
    )
    s = cloud.distance_sum / cloud.distance_count
    points, knn = cloud_tensors(cloud, s, "cpu")
    loss_fn = ReceptiveFieldLoss(2 * len(teacher.blocks), "cpu")
    rng = np.random.default_rng(0)

    def step():
        chosen = sorted(rng.choice(len(points), size=samples, replace=False).tolist())
        opt.zero_grad(set_to_none=True)
        loss_fn(forward, decoder, points, knn, cloud.knn, chosen).backward()
        opt.step()

    return step


def student_step_fn(cloud, d: int, obvious: bool):
    import torch

    from st3d_edge.model.network import DescriptorNet, reference_forward
    from st3d_edge.train.common import cloud_tensors
    from st3d_edge.train.student import student_loss

    torch.manual_seed(0)
    teacher, student = DescriptorNet(d=d), DescriptorNet(d=d)
    s = cloud.distance_sum / cloud.distance_count
    points, knn = cloud_tensors(cloud, s, "cpu")
    with torch.no_grad():
        target = teacher(points, knn)
        target = (target - target.mean(0)) / target.std(0)
    forward = (lambda p, q: reference_forward(student, p, q)) if obvious else student
    opt = torch.optim.Adam(student.parameters(), lr=1e-3, weight_decay=1e-5)

    def step():
        opt.zero_grad(set_to_none=True)
        student_loss(forward, points, knn, target).backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big-repeats", type=int, default=1)
    args = parser.parse_args()

    import torch

    from st3d_edge.config import get_preset
    from st3d_edge.runtime.memory import peak_host_rss_mb

    torch.set_num_threads(args.threads)
    cpu = get_preset("cpu")
    rows = [
        (
            "cpu preset",
            cpu.model.n,
            cpu.model.k,
            cpu.model.d,
            cpu.pretrain.samples_per_step,
            cpu.model.decoder_points,
            args.repeats,
            True,
        ),
        ("paper size", 64000, 32, 64, 16, 1024, args.big_repeats, False),
    ]
    print(f"training step times, CPU, {args.threads} thread(s); seconds: median p90")
    header = f"{'row':12} {'n':>6} {'d':>3} {'stage':9} {'fast':>17} {'obvious':>17} {'ratio':>6}"
    print(f"{header} {'peak RSS MiB':>12}")
    for label, n, k, d, samples, m, repeats, with_baseline in rows:
        cloud = make_cloud(n, k, cpu.pretrain.objects_per_scene if with_baseline else 10)
        for stage in ("pretrain", "student"):

            def build(obvious: bool, stage=stage, cloud=cloud, d=d, samples=samples, m=m):
                if stage == "pretrain":
                    return pretrain_step_fn(cloud, d, samples, m, obvious)
                return student_step_fn(cloud, d, obvious)

            fast = time_steps(build(False), repeats)
            base_text, ratio_text = f"{'skipped':>17}", f"{'-':>6}"
            if with_baseline:
                base = time_steps(build(True), repeats)
                base_text = _stats(base)
                ratio_text = f"{np.median(base) / np.median(fast):6.2f}"
            print(
                f"{label:12} {n:6d} {d:3d} {stage:9} {_stats(fast)} {base_text} {ratio_text} "
                f"{peak_host_rss_mb():12.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
