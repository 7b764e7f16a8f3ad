"""The run folder of a training job: resolved config, checkpoints and the per-epoch metrics log.

Starting a job in a folder that already holds one is refused unless the user asks to
``resume`` it (continue from ``last.pt``) or to ``overwrite`` it (start over; the cache of
sampled clouds is kept, since it depends only on its own key). On resume the folder's own
``config.json`` is authoritative: the job continues with exactly the settings it started with,
except that the number of epochs may be raised; options given on the command line that differ
from it are refused (:func:`check_resume`), listing the differences, rather than ignored.

A folder holds a run once a training epoch has been saved (``last.pt``): a folder a job left
behind when it failed before that (a config only) is simply started over.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from st3d_edge.config import Preset, from_dict, load_json, save_json, to_dict
from st3d_edge.errors import file_error
from st3d_edge.io_utils import write_text_atomic
from st3d_edge.train import distributed as dist_utils

CONFIG = "config.json"
LAST = "last.pt"
METRICS = "metrics.jsonl"
CACHE = "cache"
JOB_KEY = "job"  # job-specific settings stored beside the preset's sections in config.json


def start_run(run_dir: Path, config: dict, *, resume: bool, overwrite: bool) -> dict:
    """Create or reopen ``run_dir``; return the config the job must use."""
    run_dir = Path(run_dir)
    has_run = (run_dir / LAST).is_file()
    if resume:
        if not (run_dir / LAST).is_file():
            raise file_error(run_dir, "nothing to resume: no last.pt in this run folder")
        saved = read_config(run_dir)
        saved_epochs = _epochs(saved)
        wanted = _epochs(config)
        if wanted is not None and saved_epochs is not None and wanted > saved_epochs:
            _set_epochs(saved, wanted)
            save_json(run_dir / CONFIG, saved)
        return saved
    if has_run and not overwrite:
        raise file_error(
            run_dir, "already holds a training run; pass --resume to continue it or --overwrite to start over"
        )
    if run_dir.is_dir():
        for child in run_dir.iterdir():
            if child.name == CACHE:
                continue
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    save_json(run_dir / CONFIG, config)
    return config


def open_run(
    run_dir: Path, config: dict, env: dist_utils.Dist, *, resume: bool, overwrite: bool
) -> tuple[dict, Preset]:
    """Open ``run_dir`` on every rank; return the config the job must use and its preset.

    Rank 0 creates or reopens the folder (:func:`start_run`); the other ranks wait for it and
    then read the config it wrote, so every rank trains with the same settings.
    """
    if env.is_main:
        config = start_run(run_dir, config, resume=resume, overwrite=overwrite)
    dist_utils.barrier(env)
    if not env.is_main:
        config = read_config(run_dir)
    return config, preset_of(config)


EPOCH_KEYS = ("pretrain.epochs", "student.epochs")


def check_resume(run_dir: Path, asked: dict[str, Any]) -> None:
    """Refuse ``--resume`` when options given now differ from the run's own config.

    ``asked``: the options the user actually gave, by their place in config.json
    (``"model.n"``, ``"job.data"``, ...); options left at their defaults are not compared.
    An epoch count (``"pretrain.epochs"``, ``"student.epochs"``) may be raised, which is how a
    finished run is continued, but not lowered: the learning-rate schedule was laid out over the
    run's own count, and a lower one would silently be ignored.
    """
    if not (Path(run_dir) / LAST).is_file():
        return  # start_run says there is nothing to resume
    saved = read_config(run_dir)
    differences = []
    for key, value in asked.items():
        have: Any = saved
        for part in key.split("."):
            have = have.get(part) if isinstance(have, dict) else None
        if key in EPOCH_KEYS and value is not None and have is not None and value >= have:
            continue  # raising the epochs continues the run
        if value is not None and have != value:
            differences.append(f"{key} {have!r} -> {value!r}")
    if differences:
        raise file_error(
            Path(run_dir) / CONFIG,
            f"--resume continues the run with its own settings, but these options differ: "
            f"{'; '.join(differences)}; drop them, or start over with --overwrite",
        )


def read_config(run_dir: Path) -> dict:
    path = Path(run_dir) / CONFIG
    data = load_json(path)
    if not isinstance(data, dict) or "model" not in data:
        raise file_error(path, "not a run configuration (no 'model' section)")
    return data


def preset_of(config: dict) -> Preset:
    """The :class:`Preset` part of a run config (unknown keys such as ``job`` are ignored)."""
    return from_dict(Preset, config)


def run_config(preset: Preset, **job) -> dict:
    return {**to_dict(preset), JOB_KEY: job}


def _epochs(config: dict) -> int | None:
    kind = config.get(JOB_KEY, {}).get("kind")
    section = "pretrain" if kind == "teacher" else "student"
    return config.get(section, {}).get("epochs")


def _set_epochs(config: dict, epochs: int) -> None:
    kind = config.get(JOB_KEY, {}).get("kind")
    config["pretrain" if kind == "teacher" else "student"]["epochs"] = epochs


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_metrics(run_dir: Path, records: list[dict]) -> None:
    """Rewrite the whole log atomically (it is small), so a crash never leaves a torn line."""
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    write_text_atomic(Path(run_dir) / METRICS, text)
