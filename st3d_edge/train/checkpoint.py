"""Checkpoints: written atomically, read back with ``torch.load(weights_only=True)``.

A checkpoint is a dict of plain tensors, numbers, strings, lists and dicts (model and
optimizer ``state_dict``s qualify), so loading never unpickles arbitrary objects. RNG states
are stored as the uint8 tensors torch returns for them.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from st3d_edge.errors import file_error
from st3d_edge.io_utils import atomic_path
from st3d_edge.train.common import require_torch


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` via a temporary file and a rename: an interrupted save leaves the old file."""
    torch = require_torch()
    path = Path(path)
    with atomic_path(path, durable=True) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; a missing or damaged file is a user error."""
    torch = require_torch()
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, OSError) as exc:
        # torch's own text advises weights_only=False, which would run whatever the file holds
        raise file_error(
            path, f"corrupt or truncated checkpoint ({type(exc).__name__}), start over with --overwrite"
        ) from None
    if not isinstance(state, dict):
        raise file_error(path, "not a checkpoint (expected a dictionary)")
    return state


def require_keys(path: str | Path, state: dict[str, Any], keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise file_error(path, f"checkpoint lacks {', '.join(missing)}")
