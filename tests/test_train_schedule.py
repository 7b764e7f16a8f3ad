"""The learning-rate decay and the student's step budget."""

from __future__ import annotations

import math

import pytest

from st3d_edge.config import StudentConfig, get_preset, student_epochs
from st3d_edge.train.loop import epoch_lr


def test_cosine_decay_runs_from_the_base_rate_to_the_floor():
    rates = [epoch_lr(1e-3, e, 10, floor=0.02) for e in range(1, 11)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(2e-5)
    assert all(a > b for a, b in zip(rates[:-1], rates[1:], strict=True))
    assert rates[4] == pytest.approx(1e-3 * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * 4 / 9))))
    assert epoch_lr(1e-3, 1, 1) == 1e-3


@pytest.mark.parametrize(
    ("steps", "scans", "epochs"), [(1000, 20, 50), (1000, 12, 84), (1000, 3000, 1), (0, 7, 40)]
)
def test_student_epochs_follow_the_step_budget(steps, scans, epochs):
    assert student_epochs(StudentConfig(epochs=40, steps=steps), scans) == epochs


def test_cpu_preset_keeps_the_receptive_field_local_and_ships_settings():
    cpu = get_preset("cpu")
    assert (cpu.model.n, cpu.model.k, cpu.model.scoring) == (4096, 8, "fused")
    assert cpu.student.steps > 0 and cpu.student.cosine_lr and cpu.pretrain.scenes == "depth"
