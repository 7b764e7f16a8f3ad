"""Writing scans in the MVTec 3D-AD file formats, one atomic file at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from st3d_edge.io_utils import atomic_path


def write_xyz_tiff(path: str | Path, xyz: np.ndarray) -> Path:
    """An organized H x W x 3 float32 point cloud as an uncompressed TIFF, as MVTec 3D-AD stores it."""
    import tifffile

    xyz = np.ascontiguousarray(xyz, dtype=np.float32)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, xyz, photometric="rgb")
    return Path(path)


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """An 8-bit PNG (gray for H x W, RGB for H x W x 3); a bool mask is written as 0/255."""
    from PIL import Image

    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(tmp, format="PNG")
    return Path(path)


def write_scan_files(folder: Path, stem: str, scan, with_gt: bool) -> None:
    """``folder/{xyz,rgb,gt}/<stem>.{tiff,png}`` for a synthetic scan (gt only if ``with_gt``)."""
    write_xyz_tiff(folder / "xyz" / f"{stem}.tiff", scan.xyz)
    write_png(folder / "rgb" / f"{stem}.png", scan.rgb)
    if with_gt:
        write_png(folder / "gt" / f"{stem}.png", scan.gt)
