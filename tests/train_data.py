"""Small training inputs shared by the training tests (tiny preset, 40 x 40 px synthetic scans)."""

from __future__ import annotations

from pathlib import Path

from st3d_edge.config import Preset, get_preset

CATEGORY = "tire"


def tiny_preset(epochs: int = 2, n: int = 128) -> Preset:
    preset = get_preset("tiny")
    preset.model.n = n
    preset.pretrain.scenes_train = 2
    preset.pretrain.scenes_val = 1
    preset.pretrain.epochs = 1
    preset.student.epochs = epochs
    return preset


def write_tiny_dataset(root: Path) -> Path:
    from st3d_edge.data.synthetic import write_dataset

    return write_dataset(
        root,
        categories=[CATEGORY],
        train=3,
        validation=2,
        test_good=1,
        test_defect=1,
        size=(40, 40),
        seed=0,
        progress=False,
        defects=["dent"],
    )
