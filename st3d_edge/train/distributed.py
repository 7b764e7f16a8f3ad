"""Data parallelism for both trainings: one process per device under ``torchrun``.

Every rank holds the same model; in each step every rank takes a different cloud, computes its
gradients, and the gradients are averaged over the ranks (one ``all_reduce`` of the flattened
gradients, summed then divided by the world size) before the identical optimizer step on every
rank. This is what ``DistributedDataParallel`` computes; it is written out because the batch is
one cloud per rank, the model is small (the reduction costs nothing next to a forward pass),
and an explicit average is easy to compare exactly against a single process in the tests.
Rank 0 writes every file; the others only compute.

Backend: ``nccl`` when the ranks train on CUDA devices, ``gloo`` on the CPU. Without
``torchrun`` (no ``WORLD_SIZE`` in the environment) training runs in one process with no
process group at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from st3d_edge.train.common import require_torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def resolve_device(choice: str) -> str:
    """``auto`` picks CUDA when torch sees a GPU, else the CPU; ``cuda`` without a GPU is a user error."""
    import torch

    from st3d_edge.errors import St3dError

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise St3dError("--device cuda: torch sees no CUDA GPU on this machine (use --device cpu)")
    return choice


def init_from_env(device_choice: str = "auto") -> Dist:
    """Join the process group ``torchrun`` describes in the environment, or run as a single process."""
    torch = require_torch()
    import torch.distributed as dist

    device = resolve_device(device_choice)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(0, 1, device)
    rank = int(os.environ["RANK"])
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Dist(rank, world, device)


@contextmanager
def process_group(device_choice: str = "auto") -> Iterator[Dist]:
    """:func:`init_from_env` for the length of a ``with`` block, and an orderly leave at its end.

    Every rank waits for the others before the group is destroyed: a gloo rank that tears its
    connections down while a peer is still finishing the last collective can abort the peer
    ("terminate called without an active exception"), and a process that exits with the group
    still alive can abort during interpreter shutdown. A rank leaving on an exception
    neither waits nor destroys (its peers would block, and destroying a NCCL group alone can
    hang); torchrun stops the others when it exits non-zero.
    """
    require_torch()
    import torch.distributed as dist

    created = not (dist.is_available() and dist.is_initialized())
    env = init_from_env(device_choice)
    yield env
    if created and env.active:
        leave(env)


def leave(env: Dist) -> None:
    """Wait for every rank, then destroy the process group."""
    import torch.distributed as dist

    barrier(env)
    if dist.is_initialized():
        dist.destroy_process_group()


def from_process_group(device: str = "cpu") -> Dist:
    """A :class:`Dist` for a process group the caller already initialised (tests, notebooks)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return Dist(0, 1, device)
    return Dist(dist.get_rank(), dist.get_world_size(), device)


def average_gradients(parameters: list[Any], env: Dist) -> None:
    """Replace every parameter's gradient by its mean over the ranks (missing ones count as zero)."""
    if not env.active:
        return
    import torch
    import torch.distributed as dist

    params = [p for p in parameters if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= env.world
    offset = 0
    for p in params:
        size = p.numel()
        p.grad = flat[offset : offset + size].view_as(p).clone()
        offset += size


def all_sum(values, env: Dist) -> np.ndarray:
    """Element-wise sum of a small float64 vector over the ranks."""
    array = np.asarray(values, dtype=np.float64)
    if not env.active:
        return array
    import torch
    import torch.distributed as dist

    tensor = torch.from_numpy(array.copy())
    if env.device.startswith("cuda"):
        tensor = tensor.to(env.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()


def broadcast_parameters(modules: list[Any], env: Dist) -> None:
    """Make every rank start from rank 0's weights (they are seeded alike; this makes it certain)."""
    if not env.active:
        return
    import torch.distributed as dist

    for module in modules:
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def barrier(env: Dist) -> None:
    if env.active:
        import torch.distributed as dist

        dist.barrier()


def epoch_assignment(order: list[int], step: int, env: Dist) -> int:
    """The cloud this rank takes in ``step``: slot ``step * world + rank`` of the epoch's order, wrapping."""
    return order[(step * env.world + env.rank) % len(order)]


def steps_per_epoch(count: int, env: Dist) -> int:
    return -(-count // env.world)
