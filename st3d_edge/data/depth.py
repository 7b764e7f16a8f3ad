"""Depth images to organized clouds: the pinhole camera model and its intrinsics file.

Z = depth * ``depth_scale`` (in the scan's units), X = (u - cx) Z / fx, Y = (v - cy) Z / fy,
with u the column and v the row; depth 0 or non-finite is an invalid pixel (all-zero xyz, the
MVTec convention). The intrinsics come from the caller, else from ``<scan stem>.json`` or
``intrinsics.json`` beside the scan: ``{"fx": .., "fy": .., "cx": .., "cy": .., "depth_scale": ..}``
(pixels; depth_scale defaults to 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from st3d_edge.errors import file_error

INTRINSICS_NAME = "intrinsics.json"


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole depth camera: focal lengths and principal point in pixels, depth unit."""

    fx: float
    fy: float
    cx: float
    cy: float
    depth_scale: float = 1.0  # one depth count in the scan's units


def load_intrinsics(path: str | Path) -> Intrinsics:
    """Intrinsics from a JSON file with fx, fy, cx, cy (pixels) and optional depth_scale."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        values = {key: float(data[key]) for key in ("fx", "fy", "cx", "cy")}
        intrinsics = Intrinsics(**values, depth_scale=float(data.get("depth_scale", 1.0)))
    except FileNotFoundError:
        raise file_error(path, "intrinsics file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
        raise file_error(path, "not an intrinsics file (expected JSON with numbers fx, fy, cx, cy)") from None
    if not (intrinsics.fx > 0 and intrinsics.fy > 0 and intrinsics.depth_scale > 0):
        raise file_error(path, "fx, fy and depth_scale must be positive")
    return intrinsics


def find_intrinsics(scan_path: Path, given: Intrinsics | str | Path | None) -> Intrinsics:
    if isinstance(given, Intrinsics):
        return given
    if given is not None:
        return load_intrinsics(given)
    for candidate in (scan_path.with_suffix(".json"), scan_path.parent / INTRINSICS_NAME):
        if candidate.is_file():
            return load_intrinsics(candidate)
    raise file_error(
        scan_path,
        f"a depth image needs camera intrinsics: put {scan_path.stem}.json or {INTRINSICS_NAME} beside it "
        "(fx, fy, cx, cy, depth_scale) or pass --intrinsics",
    )


def depth_to_xyz(path: Path, depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """(H, W, 3) float32 in the depth's units (pinhole back-projection); invalid pixels all zero."""
    if not (np.issubdtype(depth.dtype, np.integer) or np.issubdtype(depth.dtype, np.floating)):
        raise file_error(path, f"expected a numeric depth image, got {depth.dtype}")
    z = depth.astype(np.float64) * intrinsics.depth_scale
    z[~np.isfinite(z)] = 0.0
    rows, cols = np.indices(z.shape, dtype=np.float64)
    xyz = np.stack(
        [(cols - intrinsics.cx) * z / intrinsics.fx, (rows - intrinsics.cy) * z / intrinsics.fy, z], axis=2
    )
    xyz[z == 0] = 0.0
    return xyz.astype(np.float32)
