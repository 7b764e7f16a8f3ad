"""Pictures for a person at the line: the heatmap over the part, and the defect mask.

* ``<name>_overlay.png`` (``infer --overlay``): the scan's heatmap blended over a picture of the
  part, with a colour bar on the right and the pixel threshold marked on it by a white line.
  The picture is the scan's rgb image when it sits beside it in the MVTec layout
  (``../rgb/<name>.png`` of the same size), otherwise a shaded rendering of the scan's own
  geometry (Lambertian shading of the normals of the organized cloud, invalid pixels dark).
  Each valid pixel's heat is blended with weight 0.25 + 0.6 t, t = its score on the colour
  scale (0 .. 1): low scores leave the part visible, scores at or above the top of the scale
  cover it. Invalid pixels show the picture alone.
* ``<name>_mask.png`` (``infer --mask``): 255 where the score exceeds the bundle's pixel
  threshold, 0 elsewhere (invalid pixels too), 8-bit grey, the scan's H x W.

Both exist for organized scans only: an unorganized cloud has no image to draw on (its PLY is
coloured instead).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from st3d_edge.io_utils import atomic_path
from st3d_edge.runtime.outputs import colormap

BAR_WIDTH = 16
BAR_MARGIN = 4
LABEL_WIDTH = 56
INVALID_SHADE = 40
_LIGHT = np.array([0.3, -0.4, 1.0]) / np.linalg.norm([0.3, -0.4, 1.0])


def defect_mask(anomaly_map: np.ndarray, valid: np.ndarray, pixel_threshold: float) -> np.ndarray:
    """uint8 (H, W): 255 where a valid pixel's score is above the threshold, else 0."""
    return np.where(valid & (anomaly_map > pixel_threshold), 255, 0).astype(np.uint8)


def write_mask_png(
    path: str | Path, anomaly_map: np.ndarray, valid: np.ndarray, pixel_threshold: float
) -> Path:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(defect_mask(anomaly_map, valid, pixel_threshold), mode="L").save(tmp, format="PNG")
    return Path(path)


def rgb_beside(scan_path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The MVTec layout's ``../rgb/<name>.png`` of a scan when present and of the scan's size."""
    from PIL import Image, UnidentifiedImageError

    scan_path = Path(scan_path)
    if scan_path.parent.name != "xyz":
        return None
    candidate = scan_path.parent.parent / "rgb" / f"{scan_path.stem}.png"
    if not candidate.is_file():
        return None
    try:
        with Image.open(candidate) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError):
        return None
    return rgb if rgb.shape[:2] == tuple(shape) else None


def shaded(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3): grey Lambertian shading of the organized cloud's surface normals."""
    xyz = np.zeros((*valid.shape, 3), dtype=np.float64)
    xyz[valid] = points  # the scan's points are its valid pixels in row-major order
    normal = np.cross(np.gradient(xyz, axis=1), np.gradient(xyz, axis=0))
    length = np.linalg.norm(normal, axis=2)
    shade = np.abs(normal @ _LIGHT) / np.where(length > 0, length, 1.0)
    grey = np.where(valid & (length > 0), 60 + 180 * shade, INVALID_SHADE)
    return np.repeat(np.rint(grey).astype(np.uint8)[..., None], 3, axis=2)


def overlay_rgb(
    base: np.ndarray, anomaly_map: np.ndarray, valid: np.ndarray, vmax: float, pixel_threshold: float | None
) -> np.ndarray:
    """(H, W + bar, 3) uint8: the blended picture and the colour bar (see the module docstring)."""
    scale = float(vmax) if np.isfinite(vmax) and vmax > 0 else 1.0
    t = np.clip(np.nan_to_num(anomaly_map / scale), 0.0, 1.0)
    weight = np.where(valid, 0.25 + 0.6 * t, 0.0)[..., None]
    blended = np.rint(weight * colormap(anomaly_map, scale) + (1 - weight) * base).astype(np.uint8)
    return np.concatenate([blended, colour_bar(valid.shape[0], scale, pixel_threshold)], axis=1)


def colour_bar(height: int, vmax: float, pixel_threshold: float | None) -> np.ndarray:
    """(height, width, 3) uint8: the scale from vmax (top) to 0, the threshold as a white line."""
    from PIL import Image, ImageDraw

    width = BAR_MARGIN + BAR_WIDTH + LABEL_WIDTH
    panel = np.full((height, width, 3), 255, dtype=np.uint8)
    values = vmax * (1.0 - np.arange(height) / max(height - 1, 1))
    panel[:, BAR_MARGIN : BAR_MARGIN + BAR_WIDTH] = colormap(values, vmax)[:, None, :]
    image = Image.fromarray(panel)
    draw = ImageDraw.Draw(image)
    text_x = BAR_MARGIN + BAR_WIDTH + 3
    draw.text((text_x, 0), f"{vmax:.3g}", fill=(0, 0, 0))
    draw.text((text_x, max(height - 12, 0)), "0", fill=(0, 0, 0))
    if pixel_threshold is not None and 0 <= pixel_threshold <= vmax:
        row = int(round((1.0 - pixel_threshold / vmax) * (height - 1)))
        draw.line([(BAR_MARGIN, row), (BAR_MARGIN + BAR_WIDTH - 1, row)], fill=(255, 255, 255), width=2)
        draw.text((text_x, max(row - 6, 0)), f"thr {pixel_threshold:.3g}", fill=(0, 0, 0))
    return np.asarray(image)


def write_overlay_png(
    path: str | Path, scan_path: Path, result, vmax: float, pixel_threshold: float | None
) -> Path:
    """The overlay picture of an organized scan's result (``ScanResult``)."""
    from PIL import Image

    base = rgb_beside(scan_path, result.valid.shape)
    if base is None:
        base = shaded(result.points, result.valid)
    picture = overlay_rgb(base, result.anomaly_map, result.valid, vmax, pixel_threshold)
    with atomic_path(path) as tmp:
        Image.fromarray(picture, mode="RGB").save(tmp, format="PNG")
    return Path(path)
