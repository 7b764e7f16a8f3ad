"""Command-line choices the two training commands share (torch-free, so `--help` stays light)."""

from __future__ import annotations

from enum import Enum

from st3d_edge.config import Preset, get_preset
from st3d_edge.geometry.sampling import SAMPLERS


class PresetName(str, Enum):
    paper = "paper"
    cpu = "cpu"
    tiny = "tiny"


# the samplers by name (st3d_edge.geometry.sampling.SAMPLERS, which imports numpy only)
SamplerChoice = Enum("SamplerChoice", [(name.replace("-", "_"), name) for name in SAMPLERS], type=str)


def resolve_preset(
    name: PresetName | None,
    *,
    seed: int | None = None,
    n: int | None = None,
    d: int | None = None,
    sampler: SamplerChoice | None = None,
    absolute_coords: bool = False,
) -> Preset:
    """The named preset (``paper`` when none) with the model overrides applied."""
    preset = get_preset(name.value if name else "paper")
    if seed is not None:
        preset.pretrain.seed = seed
        preset.student.seed = seed
    if n is not None:
        preset.model.n = n
    if d is not None:
        preset.model.d = d
    if sampler is not None:
        preset.model.sampler = sampler.value
    if absolute_coords:
        preset.model.absolute_coords = True
    return preset


def check_positive(**values: int | None) -> None:
    """Reject zero or negative counts with the option's name (exit code 2)."""
    import typer

    for name, value in values.items():
        if value is not None and value < 1:
            raise typer.BadParameter(
                f"must be at least 1, got {value}", param_hint=f"--{name.replace('_', '-')}"
            )


def model_options_given(
    name: PresetName | None,
    n: int | None,
    d: int | None,
    sampler: SamplerChoice | None,
    absolute_coords: bool,
) -> dict[str, object]:
    """The model options a user gave, by their place in config.json (None: left at the default)."""
    return {
        "name": name.value if name else None,
        "model.n": n,
        "model.d": d,
        "model.sampler": sampler.value if sampler else None,
        "model.absolute_coords": True if absolute_coords else None,
    }
