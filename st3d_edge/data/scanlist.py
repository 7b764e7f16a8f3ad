"""Lists of scan files from what a user types (files, folders, globs), and the validation split.

Decisions:

- A folder is searched recursively for files of the readers' formats except ``.png``, ``.txt``
  and ``.csv``: in a scan folder those are usually MVTec's rgb/gt images, notes and tables, not
  scans. Such scans (depth PNGs, text clouds) are given by name or by a glob.
- The validation split of a flat folder of good scans is drawn once, from ``seed``, over the
  sorted file list: ``max(1, round(fraction * count))`` scans, and at least one stays for
  training. The same files and seed always give the same split; the run's config records it.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from st3d_edge.data.readers import SCAN_SUFFIXES
from st3d_edge.errors import St3dError

FOLDER_SUFFIXES = tuple(s for s in SCAN_SUFFIXES if s not in (".png", ".txt", ".csv"))


def expand_scan_paths(patterns: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders searched recursively, globs expanded; sorted, unique."""
    found: list[Path] = []
    for pattern in patterns:
        pattern = str(pattern)
        path = Path(pattern)
        if path.is_dir():
            matches = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES
            )
        elif path.exists():
            matches = [path]
        elif glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        else:
            raise St3dError(f"{pattern}: no such file or folder")
        if not matches:
            raise St3dError(f"{pattern}: no scans ({' '.join(FOLDER_SUFFIXES)}) found")
        found.extend(matches)
    unique = {p.resolve(): p for p in found}
    return [unique[key] for key in sorted(unique)]


def split_validation(paths: list[Path], fraction: float, seed: int) -> tuple[list[Path], list[Path]]:
    """(training, validation) scans, a seeded random split (see the module docstring)."""
    if not 0.0 < fraction < 1.0:
        raise St3dError(f"the validation fraction must be in (0, 1), got {fraction}")
    paths = sorted(paths)
    if len(paths) < 2:
        raise St3dError(f"{len(paths)} good scan(s): need at least 2 to hold some out for validation")
    count = min(len(paths) - 1, max(1, round(fraction * len(paths))))
    chosen = set(np.random.default_rng(seed).permutation(len(paths))[:count].tolist())
    train = [p for i, p in enumerate(paths) if i not in chosen]
    validation = [p for i, p in enumerate(paths) if i in chosen]
    return train, validation


MASK_SUFFIXES = (".png", ".npy")


def mask_path(scan_path: Path, masks_dir: Path | None) -> Path | None:
    """The ground-truth mask of a defective scan: ``<masks_dir>/<scan stem>.png`` or ``.npy``.

    Without ``masks_dir`` None (the reader then finds MVTec's ``../gt/<name>.png`` itself).
    """
    if masks_dir is None:
        return None
    for suffix in MASK_SUFFIXES:
        candidate = Path(masks_dir) / f"{Path(scan_path).stem}{suffix}"
        if candidate.is_file():
            return candidate
    raise St3dError(f"{scan_path}: no mask {Path(scan_path).stem}.png or .npy in {masks_dir}")
