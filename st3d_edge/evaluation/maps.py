"""Per-pixel anomaly maps of a scan, and their files in the layout MVTec's evaluation reads.

A map has the scan's H x W: the scores of the sampled points sit on their pixels and every
other pixel (unsampled valid pixels and the invalid background alike, as in the paper) is
filled by harmonic interpolation. Maps are written as float32 TIFFs to
``<maps>/<category>/test/<defect type>/<id>.tiff`` (``good`` for good parts), the layout
the official MVTec 3D-AD evaluation script takes as ``--anomaly_maps_dir``.

An unorganized scan (no pixel grid) is scored on every point by the runtime's inverse-distance
fill, and its "map" is a 1 x m row with the defect points first: with no grid to split them by,
a scan's defect points form one region, and the PRO curve only depends on which scores belong
to which region, not on their order. Such maps are not written (MVTec's script reads images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from st3d_edge.evaluation.harmonic import harmonic_fill


def scores_to_map(shape: tuple[int, int], pixels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """float32[H, W]: ``scores`` at ``pixels`` (m, 2) (row, col), harmonic interpolation elsewhere."""
    pixels = np.asarray(pixels)
    scores = np.asarray(scores, dtype=np.float64)
    if pixels.ndim != 2 or pixels.shape[1] != 2 or len(pixels) != len(scores):
        raise ValueError(f"pixels {pixels.shape} and scores {scores.shape} do not match")
    values = np.zeros(shape, dtype=np.float64)
    known = np.zeros(shape, dtype=bool)
    values[pixels[:, 0], pixels[:, 1]] = scores
    known[pixels[:, 0], pixels[:, 1]] = True
    return harmonic_fill(values, known)


def map_path(maps_dir: str | Path, category: str, defect: str | None, name: str) -> Path:
    """``<maps>/<category>/test/<defect or good>/<name>.tiff``."""
    return Path(maps_dir) / category / "test" / (defect or "good") / f"{name}.tiff"


def write_map(path: str | Path, anomaly_map: np.ndarray) -> Path:
    """Write one map as a float32 TIFF, atomically (the runtime's writer, so both agree)."""
    from st3d_edge.runtime.outputs import write_map_tiff

    return write_map_tiff(path, anomaly_map)


def point_map(
    points: np.ndarray, idx: np.ndarray, scores: np.ndarray, gt: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(1 x m map, 1 x m mask) of an unorganized scan, defect points first (module docstring)."""
    from st3d_edge.geometry.fill import idw_fill

    filled = np.asarray(idw_fill(points[idx], scores, points), dtype=np.float64)
    gt = np.zeros(len(points), dtype=bool) if gt is None else np.asarray(gt, dtype=bool)
    order = np.argsort(~gt, kind="stable")
    return filled[order][None, :], gt[order][None, :]
