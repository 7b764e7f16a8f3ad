"""Load a trained category from its run folder: the pieces the scorer, export and evaluation need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from st3d_edge.calibration.stats import load_stats
from st3d_edge.config import Preset
from st3d_edge.errors import file_error
from st3d_edge.train.checkpoint import load_checkpoint, require_keys
from st3d_edge.train.common import build_net
from st3d_edge.train.runfolder import CONFIG, preset_of, read_config
from st3d_edge.train.student import STATS, STUDENT, TEACHER


def load_category(run_dir: str | Path) -> tuple[Any, Any, float, np.ndarray, np.ndarray, Preset]:
    """(teacher, student, s, mu, sigma, config) of a trained category, both networks in eval mode on the CPU.

    A folder without a finished student (no ``student.pt``) is refused with one line that
    names it and says how to train it.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise file_error(run_dir, "no such run folder; train the category first with `st3d-edge train`")
    missing = [name for name in (CONFIG, STUDENT, TEACHER, STATS) if not (run_dir / name).exists()]
    if missing:
        raise file_error(
            run_dir,
            f"has no trained model ({', '.join(missing)} missing); train it with `st3d-edge train`",
        )
    config = read_config(run_dir)
    if config.get("job", {}).get("kind") not in (None, "category"):
        raise file_error(run_dir, "is a teacher run folder, not a trained category")
    preset = preset_of(config)
    s, mu, sigma = load_stats(run_dir / STATS)
    nets = []
    for name in (TEACHER, STUDENT):
        path = run_dir / name
        state = load_checkpoint(path)
        require_keys(path, state, ("model",))
        net = build_net(preset.model)
        try:
            net.load_state_dict(state["model"])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise file_error(path, f"weights do not fit the config's model ({first})") from None
        nets.append(net.eval())
    if mu.shape[0] != preset.model.d:
        raise file_error(
            run_dir / STATS / "mu.npy", f"has {mu.shape[0]} channels, the model has d={preset.model.d}"
        )
    return nets[0], nets[1], s, mu, sigma, preset
