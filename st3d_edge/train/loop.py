"""The epoch loop both trainings share: ordered steps, averaged gradients, validation, checkpoints.

Reproducibility: all randomness of epoch ``e`` (the visiting order, and whatever the loss draws,
which the caller seeds from (seed, e, cloud)) is a function of the seed and ``e`` alone. So a
run resumed from ``last.pt`` after epoch ``e`` repeats exactly what an uninterrupted run does
in epoch ``e + 1``, and a data-parallel run sees the same clouds, with the same draws, as a
single process whose steps average the same clouds' gradients. ``last.pt`` still records
torch's global RNG state, so code that draws from it later also resumes exactly.

Epochs are counted from 1. The metrics log has one line per finished epoch: ``epoch``,
``train_loss`` (mean over the epoch's steps and ranks), ``val_loss``, ``seconds`` (training
and validation of that epoch), ``best`` (whether this epoch produced the best checkpoint).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from st3d_edge.train import distributed as dist_utils
from st3d_edge.train.checkpoint import load_checkpoint, require_keys, save_checkpoint
from st3d_edge.train.runfolder import LAST, read_metrics, write_metrics

ORDER_STREAM = 1_000_003


@dataclass
class Loop:
    run_dir: Path
    modules: dict[str, Any]  # name -> torch module whose weights the optimizer trains
    optimizer: Any
    epochs: int
    train_count: int
    seed: int
    loss_fn: Callable[[int, int], Any]  # (epoch, cloud index) -> scalar loss tensor
    val_fn: Callable[[], float]  # mean validation loss over all validation clouds (all ranks agree)
    save_best: Callable[[int, float], None]  # called on rank 0 with (epoch, val loss)
    env: dist_utils.Dist
    label: str = "train"
    progress: bool = True
    cosine_lr: bool = False  # decay every group's learning rate over the epochs, see epoch_lr


def epoch_lr(base: float, epoch: int, epochs: int, floor: float = 0.02) -> float:
    """Cosine decay from ``base`` in epoch 1 to ``floor * base`` in the last epoch.

    A function of the epoch alone, so a resumed run uses the rate the uninterrupted one would.
    """
    if epochs <= 1:
        return base
    t = (epoch - 1) / (epochs - 1)
    return base * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t)))


def epoch_order(count: int, seed: int, epoch: int) -> list[int]:
    import torch

    generator = torch.Generator().manual_seed(seed * ORDER_STREAM + epoch)
    return torch.randperm(count, generator=generator).tolist()


def _parameters(loop: Loop) -> list[Any]:
    return [p for m in loop.modules.values() for p in m.parameters()]


def _restore(loop: Loop) -> tuple[int, float, int, list[dict]]:
    import torch

    path = Path(loop.run_dir) / LAST
    state = load_checkpoint(path)
    require_keys(path, state, ("epoch", "modules", "optimizer", "best_val", "best_epoch"))
    for name, module in loop.modules.items():
        module.load_state_dict(state["modules"][name])
    loop.optimizer.load_state_dict(state["optimizer"])
    if "torch_rng" in state:
        torch.set_rng_state(state["torch_rng"])
    done = int(state["epoch"])
    records = [r for r in read_metrics(loop.run_dir) if r.get("epoch", 0) <= done]
    return done, float(state["best_val"]), int(state["best_epoch"]), records


def _save_last(loop: Loop, epoch: int, best_val: float, best_epoch: int) -> None:
    import torch

    save_checkpoint(
        Path(loop.run_dir) / LAST,
        {
            "epoch": epoch,
            "modules": {name: m.state_dict() for name, m in loop.modules.items()},
            "optimizer": loop.optimizer.state_dict(),
            "best_val": best_val,
            "best_epoch": best_epoch,
            "torch_rng": torch.get_rng_state(),
        },
    )


def run_loop(loop: Loop, resume: bool = False) -> dict:
    """Train until ``loop.epochs``; returns the best validation loss and epoch and the metrics."""
    env = loop.env
    done, best_val, best_epoch, records = 0, math.inf, 0, []
    if resume:
        done, best_val, best_epoch, records = _restore(loop)
    dist_utils.broadcast_parameters(list(loop.modules.values()), env)
    steps = dist_utils.steps_per_epoch(loop.train_count, env)
    params = _parameters(loop)
    base_lr = [group.get("initial_lr", group["lr"]) for group in loop.optimizer.param_groups]
    for group, lr in zip(loop.optimizer.param_groups, base_lr, strict=True):
        group["initial_lr"] = lr
    bar = _Bar(loop, steps, done) if (loop.progress and env.is_main) else None
    try:
        for epoch in range(done + 1, loop.epochs + 1):
            start = time.perf_counter()
            for module in loop.modules.values():
                module.train()
            order = epoch_order(loop.train_count, loop.seed, epoch)
            if loop.cosine_lr:
                for group, lr in zip(loop.optimizer.param_groups, base_lr, strict=True):
                    group["lr"] = epoch_lr(lr, epoch, loop.epochs)
            loss_sum = 0.0
            for step in range(steps):
                index = dist_utils.epoch_assignment(order, step, env)
                loop.optimizer.zero_grad(set_to_none=True)
                loss = loop.loss_fn(epoch, index)
                loss.backward()
                dist_utils.average_gradients(params, env)
                loop.optimizer.step()
                value = float(loss.detach())
                loss_sum += value
                if bar:
                    bar.step(epoch, step, value)
            total, count = dist_utils.all_sum([loss_sum, steps], env)
            for module in loop.modules.values():
                module.eval()
            val = float(loop.val_fn())
            improved = val < best_val
            if improved:
                best_val, best_epoch = val, epoch
                if env.is_main:
                    loop.save_best(epoch, val)
            record = {
                "epoch": epoch,
                "train_loss": float(total / count),
                "val_loss": val,
                "seconds": round(time.perf_counter() - start, 3),
                "best": improved,
            }
            records.append(record)
            if env.is_main:
                _save_last(loop, epoch, best_val, best_epoch)
                write_metrics(loop.run_dir, records)
                if bar:
                    bar.epoch_done(record)
            dist_utils.barrier(env)
    finally:
        if bar:
            bar.close()
    return {"best_val": best_val, "best_epoch": best_epoch, "metrics": records}


class _Bar:
    """One bar over all remaining steps (so its ETA is the run's), status: step and loss."""

    def __init__(self, loop: Loop, steps: int, done: int) -> None:
        from st3d_edge.console import progress_bar

        self.loop, self.steps = loop, steps
        self.progress = progress_bar()
        self.progress.start()
        self.task = self.progress.add_task(
            f"{loop.label} epoch {done + 1}/{loop.epochs}", total=steps * (loop.epochs - done), status=""
        )

    def step(self, epoch: int, step: int, loss: float) -> None:
        self.progress.update(
            self.task,
            advance=1,
            description=f"{self.loop.label} epoch {epoch}/{self.loop.epochs}",
            status=f"step {step + 1}/{self.steps} loss {loss:.4g}",
        )

    def epoch_done(self, record: dict) -> None:
        from st3d_edge.console import detail_lines, err

        if not detail_lines():
            return
        mark = " (best)" if record["best"] else ""
        err.print(
            f"epoch {record['epoch']}: train {record['train_loss']:.5g}  val {record['val_loss']:.5g}"
            f"  {record['seconds']:.1f}s{mark}",
            highlight=False,
        )

    def close(self) -> None:
        self.progress.stop()
