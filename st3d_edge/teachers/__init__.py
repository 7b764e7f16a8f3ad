"""Pretrained teachers shipped inside the package (the teacher does not depend on the category).

``cpu/`` holds the teacher of the ``cpu`` preset: ``teacher.pt`` (weights only), ``config.json``
(the preset it was pretrained with) and ``provenance.json`` (the command that made it, its
validation loss and how long it took). A student samples with its own run's sampler (it is not
a setting the teacher fixes, :data:`MATCH_FIELDS`). ``st3d-edge train`` uses it when no teacher is given and
the run's workdir holds none; ``st3d-edge pretrain`` stays for those with a GPU, ModelNet or
scenes of their own.
"""

from __future__ import annotations

from pathlib import Path

from st3d_edge.config import Preset

SHIPPED = {"cpu": Path(__file__).resolve().parent / "cpu"}
# the model settings a shipped teacher fixes (a student must use the same)
MATCH_FIELDS = ("d", "blocks", "absolute_coords", "k")


def shipped_teacher(preset: Preset) -> Path | None:
    """The shipped teacher folder whose model settings match ``preset``, if one ships."""
    import json

    for folder in SHIPPED.values():
        config = folder / "config.json"
        if not (folder / "teacher.pt").is_file() or not config.is_file():
            continue
        model = json.loads(config.read_text()).get("model", {})
        if all(model.get(name) == getattr(preset.model, name) for name in MATCH_FIELDS):
            return folder
    return None


def shipped_provenance(name: str = "cpu") -> dict:
    """The shipped teacher's ``provenance.json`` (its command, validation loss, effective rank),
    or an empty dict when that teacher does not ship."""
    import json

    path = SHIPPED[name] / "provenance.json"
    return json.loads(path.read_text()) if path.is_file() else {}
