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

Before a map is written or measured it is blurred by a Gaussian (:func:`blur_map`), as the
published code of "Back to the Feature" and PatchCore does with every anomaly map (sigma = 4 px
on their 224 x 224 maps; here the same fraction of the map's larger side, so that the blur
covers the same share of the field of view at any resolution). It is part of the evaluation
protocol, applied to every method alike, and not of the runtime: ``infer`` writes the maps
unblurred and compares them with the pixel threshold as they are. Unorganized scans' point
maps are never blurred. ``map_sigma = 0`` gives the raw maps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAP_SIGMA = 4.0  # px of a 224 x 224 map, as BTF's and PatchCore's evaluation; see blur_map
MAP_SIGMA_SIDE = 224


def blur_map(anomaly_map: np.ndarray, sigma: float = MAP_SIGMA) -> np.ndarray:
    """The map blurred by a Gaussian of ``sigma * max(H, W) / 224`` px (edges: nearest value)."""
    from scipy.ndimage import gaussian_filter

    if sigma < 0 or not np.isfinite(sigma):
        raise ValueError(f"the map blur's sigma must be a finite number >= 0, got {sigma}")
    if sigma == 0:
        return anomaly_map
    scaled = sigma * max(anomaly_map.shape) / MAP_SIGMA_SIDE
    return gaussian_filter(anomaly_map, scaled, mode="nearest").astype(anomaly_map.dtype, copy=False)


def scores_to_map(shape: tuple[int, int], pixels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """float32[H, W]: ``scores`` at ``pixels`` (m, 2) (row, col), harmonic interpolation elsewhere."""
    from st3d_edge.evaluation.harmonic import harmonic_fill  # scipy: only when a map is made

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
