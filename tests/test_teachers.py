"""The teacher shipped inside the package, and which teacher a training run picks."""

from __future__ import annotations

import json

import pytest

from st3d_edge.config import get_preset, to_dict
from st3d_edge.teachers import SHIPPED, shipped_provenance, shipped_teacher
from st3d_edge.train.api import resolve_teacher


def test_the_cpu_preset_ships_a_teacher_with_its_provenance():
    folder = shipped_teacher(get_preset("cpu"))
    assert folder == SHIPPED["cpu"]
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["command"].startswith("st3d-edge pretrain --preset cpu")
    assert provenance["best_val_loss"] > 0 and provenance["epochs_run"] >= provenance["best_epoch"] >= 1
    assert (folder / "teacher.pt").stat().st_size < 1_000_000, "weights only, no decoder or optimizer"
    # the command it names reproduces it: the preset's pretraining settings are the ones it ran with
    shipped = json.loads((folder / "config.json").read_text())
    assert shipped["pretrain"] == to_dict(get_preset("cpu").pretrain)
    assert shipped["model"] == to_dict(get_preset("cpu").model)
    assert shipped_provenance("cpu") == provenance


def test_the_shipped_weights_load_into_the_presets_network():
    torch = pytest.importorskip("torch")
    from st3d_edge.train.student import load_teacher

    teacher, info = load_teacher(SHIPPED["cpu"], get_preset("cpu"))
    assert sum(p.numel() for p in teacher.parameters()) > 10_000
    assert info["epoch"] >= 1
    assert all(torch.isfinite(p).all() for p in teacher.parameters())


def test_no_teacher_ships_for_other_model_settings():
    assert shipped_teacher(get_preset("tiny")) is None
    paper = get_preset("paper")
    assert shipped_teacher(paper) is None, "k = 32 needs its own teacher"


def test_a_run_uses_the_given_then_its_own_then_the_shipped_teacher(tmp_path):
    cpu, tiny = get_preset("cpu"), get_preset("tiny")
    assert resolve_teacher(tmp_path / "mine", tmp_path, cpu) == tmp_path / "mine"
    assert resolve_teacher(None, tmp_path, cpu) == SHIPPED["cpu"]
    assert resolve_teacher(None, tmp_path, tiny) == tmp_path / "teacher", (
        "missing: training says how to get one"
    )
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "teacher.pt").write_bytes(b"")
    assert resolve_teacher(None, tmp_path, cpu) == tmp_path / "teacher"
