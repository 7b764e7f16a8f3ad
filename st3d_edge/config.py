"""Settings for the model, the two trainings and the runtime, saved as JSON beside each artifact.

Presets
-------
``paper``  The paper's numbers (section 4.1): n = 64000 points, k = 32, d = 64, 1000 + 50
           pretraining scenes, teacher 250 epochs, student 100 epochs. GPU-sized; the default
           for real data.
``cpu``    Small enough for two CPU cores, used by the demo, the accuracy benchmark and the
           shipped teacher (st3d_edge/teachers/cpu): n = 4096, k = 8, d = 64, whose 8-hop
           receptive field holds a median 5.2 % of a 256 x 256 synthetic scan's sampled points
           (the old n = 2048, k = 16 held 17.8 %, more than a whole part). Pretraining: 400 + 32
           scenes of generic solids seen by the virtual depth camera ("depth": on the tuning
           categories their students beat those of "mixed" and surface-sampled teachers by far),
           decoder m = 256 points, 8 decoded descriptors per step, 40 epochs with a cosine decay
           (about 20 minutes on 2 idle cores). Student: about 4000 optimizer steps whatever
           the scan count (``StudentConfig.steps``), cosine decay; 2.5-3 minutes on 2 cores.
           1000 steps (the earlier setting) left the validation loss 3-10x above where 4000 take
           it, and the student's error alone far weaker on held-out families (README).
``tiny``   For unit tests only: n = 256, k = 8, d = 16, a handful of scenes and epochs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from st3d_edge.errors import file_error


@dataclass
class ModelConfig:
    d: int = 64
    k: int = 32
    n: int = 64000
    blocks: int = 4
    decoder_points: int = 1024
    absolute_coords: bool = False  # paper ablation: concatenate absolute coordinates to G
    # how a cloud is reduced to n points, see st3d_edge.geometry.sampling ("fps-split", exact FPS
    # of the two halves on two cores, is faster; measured against "fps" in the README)
    sampler: str = "fps"
    # the anomaly score: "fused" (student error + FPFH memory bank, the default) or "student"
    # (the paper's 3D-ST alone); see st3d_edge.calibration.scoring
    scoring: str = "fused"

    @property
    def lfa_layers(self) -> int:
        return 2 * self.blocks


@dataclass
class PretrainConfig:
    scenes_train: int = 1000
    scenes_val: int = 50
    objects_per_scene: int = 10
    surface_points: int = 0  # points sampled from the scene's surfaces before FPS; 0 = 4 * n
    # "surface": the paper's surface-sampled objects; "depth": generic solids seen by the virtual
    # depth camera (st3d_edge.data.depth_scenes); "mixed": the two alternately
    scenes: str = "surface"
    epochs: int = 250
    lr: float = 1e-3
    weight_decay: float = 1e-6
    samples_per_step: int = 16
    seed: int = 0
    cosine_lr: bool = False  # decay the learning rate over the epochs (train.loop.epoch_lr)


@dataclass
class StudentConfig:
    epochs: int = 100
    # when > 0, the epochs are chosen so that training takes about this many optimizer steps
    # whatever the number of training scans (student_epochs), so small categories converge too
    steps: int = 0
    cosine_lr: bool = False
    lr: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0
    random_teacher: bool = False  # paper ablation: a teacher with random weights, no pretraining


@dataclass
class Preset:
    name: str
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    student: StudentConfig = field(default_factory=StudentConfig)


def student_epochs(config: StudentConfig, train_scans: int) -> int:
    """The epochs a student trains for: ``config.epochs``, or enough for ``config.steps`` steps."""
    if config.steps > 0:
        return max(1, -(-config.steps // max(train_scans, 1)))
    return config.epochs


def _preset(name: str) -> Preset:
    if name == "paper":
        return Preset("paper")
    if name == "cpu":
        return Preset(
            "cpu",
            ModelConfig(d=64, k=8, n=4096, decoder_points=256),
            PretrainConfig(
                scenes_train=400,
                scenes_val=32,
                objects_per_scene=5,
                epochs=40,
                samples_per_step=8,
                scenes="depth",
                cosine_lr=True,
            ),
            StudentConfig(epochs=40, steps=4000, cosine_lr=True),
        )
    if name == "tiny":
        return Preset(
            "tiny",
            ModelConfig(d=16, k=8, n=256, decoder_points=64),
            PretrainConfig(scenes_train=4, scenes_val=2, objects_per_scene=3, epochs=2, samples_per_step=4),
            StudentConfig(epochs=2),
        )
    raise ValueError(f"unknown preset {name!r}; choose one of: paper, cpu, tiny")


PRESETS = ("paper", "cpu", "tiny")


def get_preset(name: str) -> Preset:
    """A fresh copy of a named preset (callers may change its fields)."""
    return _preset(name)


def to_dict(obj: Any) -> dict:
    return asdict(obj)


def from_dict(cls: type, data: dict) -> Any:
    """Build dataclass ``cls`` from ``data``, ignoring unknown keys so older files still load."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            continue
        sub = names[key].type
        if isinstance(value, dict) and isinstance(sub, str) and sub in _NESTED:
            value = from_dict(_NESTED[sub], value)
        kwargs[key] = value
    return cls(**kwargs)


_NESTED = {"ModelConfig": ModelConfig, "PretrainConfig": PretrainConfig, "StudentConfig": StudentConfig}


def save_json(path: str | Path, obj: Any) -> Path:
    from st3d_edge.io_utils import write_json_atomic

    return write_json_atomic(path, asdict(obj) if dataclasses.is_dataclass(obj) else obj)


def load_json(path: str | Path, cls: type | None = None) -> Any:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise file_error(path, "file not found") from None
    except json.JSONDecodeError as exc:
        raise file_error(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return from_dict(cls, data) if cls is not None else data
