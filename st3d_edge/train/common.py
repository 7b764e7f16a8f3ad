"""Small pieces both trainings use: building the network, moving a cached cloud to the device."""

from __future__ import annotations

from typing import Any

import numpy as np

from st3d_edge.config import ModelConfig
from st3d_edge.errors import MissingExtraError
from st3d_edge.train.cache import Cloud

RANDOM_TEACHER_STREAM = 7919  # the random-teacher ablation draws its weights from seed + this


def require_torch() -> Any:
    """The torch module; without it, the error that names the extra to install (not a traceback)."""
    try:
        import torch
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "torch":
            raise  # torch is there but something it needs is not: keep the real message
        raise MissingExtraError("torch", "train") from None
    return torch


def build_net(model: ModelConfig, seed: int | None = None) -> Any:
    """A DescriptorNet for ``model``; with ``seed``, its initial weights depend only on that seed."""
    torch = require_torch()

    from st3d_edge.model.network import DescriptorNet

    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return DescriptorNet(d=model.d, blocks=model.blocks, absolute_coords=model.absolute_coords)
    return DescriptorNet(d=model.d, blocks=model.blocks, absolute_coords=model.absolute_coords)


def cloud_tensors(cloud: Cloud, s: float, device: str) -> tuple[Any, Any]:
    """(points / s as float32, knn as int64) on ``device``: what the network takes (eq. 4)."""
    import torch

    points = np.ascontiguousarray(cloud.points, dtype=np.float32) / np.float32(s)
    return (
        torch.from_numpy(points).to(device),
        torch.from_numpy(cloud.knn.astype(np.int64)).to(device),
    )


def seeded_rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in keys])


def torch_threads(world: int = 1) -> int:
    """Use every core, split between the ranks that share this machine."""
    import os

    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // max(1, world))
    torch.set_num_threads(threads)
    return threads
