"""Data-parallel training on 2 CPU processes (gloo) agrees with one process.

What is compared: a tiny pretraining run with 2 training scenes and 1 epoch, run by 2
processes, takes exactly one step in which each rank handles one scene and the gradients are
averaged. A single process that computes the two scenes' gradients separately, averages them
and takes one Adam step from the same initial weights must end with bit-identical teacher and
decoder weights (both use one thread, so every kernel runs in the same order). The per-rank
teacher feature moments, merged across the ranks, must equal the moments of one process over
all clouds.
"""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from st3d_edge.config import get_preset
from st3d_edge.train.checkpoint import load_checkpoint
from st3d_edge.train.common import build_net, cloud_tensors
from st3d_edge.train.distributed import Dist, all_sum, leave, process_group
from st3d_edge.train.loop import epoch_order
from st3d_edge.train.pretrain import (
    SPLIT_TRAIN,
    TRAIN_POINTS_STREAM,
    ReceptiveFieldLoss,
    _choose,
    _decoder,
    pretrain,
    scene_cache,
)
from st3d_edge.train.student import teacher_moments
from tests.helpers import EXACT, FLOAT32_SAME_MATH, FLOAT64_SOLVER, assert_close


def _preset():
    preset = get_preset("tiny")
    preset.model.n = 128
    preset.pretrain.scenes_train = 2
    preset.pretrain.scenes_val = 2
    preset.pretrain.epochs = 1
    return preset


def _worker(rank: int, world: int, init_file: str, run_dir: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    env = Dist(rank, world, "cpu")
    result = pretrain(run_dir, _preset(), env=env, progress=False)
    clouds = scene_cache(os.path.join(run_dir, "cache"), _preset(), SPLIT_TRAIN, 2, None, env)
    moments = teacher_moments(build_net(_preset().model, seed=5), clouds, result.s, _preset().model.d, env)
    count, mean, m2 = moments.state()
    np.savez(os.path.join(out_dir, f"moments-{rank}.npz"), count=count, mean=mean, m2=m2)
    # the same orderly end as the CLI's: a rank must not destroy the group while its peer is
    # still finishing the last collective (that aborted the peer once on a loaded machine)
    leave(env)


def test_two_gloo_processes_equal_one_process_averaging_gradients(tmp_path):
    torch.set_num_threads(1)
    run_dir = tmp_path / "teacher"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(run_dir), str(tmp_path)), nprocs=2, join=True)

    # the same step in this process: both scenes' gradients, averaged, one Adam step
    preset = _preset()
    pc, model = preset.pretrain, preset.model
    clouds = scene_cache(run_dir / "cache", preset, SPLIT_TRAIN, 2, None, Dist())
    s = clouds.scale()
    teacher, decoder = build_net(model, seed=pc.seed), _decoder(_decoder_cls(), model, pc.seed)
    params = list(teacher.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(params, lr=pc.lr, weight_decay=pc.weight_decay)
    loss = ReceptiveFieldLoss(model.lfa_layers, "cpu")
    grads, losses = [], []
    for index in epoch_order(2, pc.seed, 1):
        cloud = clouds[index]
        points, knn = cloud_tensors(cloud, s, "cpu")
        rng = np.random.default_rng([pc.seed, TRAIN_POINTS_STREAM, 1, index])
        for p in params:
            p.grad = None
        value = loss(
            teacher, decoder, points, knn, cloud.knn, _choose(len(cloud.points), pc.samples_per_step, rng)
        )
        value.backward()
        grads.append([p.grad.clone() for p in params])
        losses.append(float(value.detach()))
    for p, g0, g1 in zip(params, *grads, strict=True):
        p.grad = (g0 + g1) / 2
    optimizer.step()

    parallel = load_checkpoint(run_dir / "teacher.pt")
    for name, value in teacher.state_dict().items():
        assert_close(parallel["model"][name].numpy(), value.numpy(), **EXACT, what=f"teacher {name}")
    for name, value in decoder.state_dict().items():
        assert_close(parallel["decoder"][name].numpy(), value.numpy(), **EXACT, what=f"decoder {name}")
    metrics = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 1

    assert_close(
        json.loads(metrics[0])["train_loss"], np.mean(losses), **FLOAT32_SAME_MATH, what="train loss"
    )

    # feature moments: each rank saw one cloud; merged they equal one process over both
    single = teacher_moments(build_net(model, seed=5), clouds, s, model.d, Dist())
    for rank in range(2):
        merged = np.load(tmp_path / f"moments-{rank}.npz")
        assert int(merged["count"]) == single.count
        assert_close(merged["mean"], single.mean, **FLOAT64_SOLVER, what=f"rank {rank} mean")
        m2 = single.state()[2]
        assert_close(merged["m2"], m2, **FLOAT64_SOLVER, what=f"rank {rank} m2")


def _decoder_cls():
    from st3d_edge.model.decoder import Decoder

    return Decoder


def _group_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    # what torchrun puts in the environment of each rank
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    with process_group("cpu") as env:
        total = all_sum([rank + 1.0], env)
    np.savez(
        os.path.join(out_dir, f"group-{rank}.npz"),
        total=total,
        world=env.world,
        alive_after=dist.is_initialized(),
    )


def test_process_group_joins_from_the_environment_and_leaves_it_destroyed(tmp_path):
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_group_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        result = np.load(tmp_path / f"group-{rank}.npz")
        assert float(result["total"][0]) == 3.0  # 1 + 2: both ranks took part in the sum
        assert int(result["world"]) == 2
        assert not bool(result["alive_after"])


def test_process_group_without_torchrun_is_one_process_and_no_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with process_group("cpu") as env:
        assert (env.rank, env.world, env.device) == (0, 1, "cpu")
        assert not dist.is_initialized()
