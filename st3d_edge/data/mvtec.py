"""Reading MVTec 3D-AD: ``<root>/<category>/{train,validation,test}/<good|defect>/{xyz,rgb,gt}/NNN.*``.

An xyz file is an organized H x W x 3 float32 TIFF. A pixel is valid unless all three coordinates
are 0 (the scanner's "no depth") or any is not finite. Ground truth masks are 8-bit PNGs (0/255;
0/1 is accepted too) of the same size; any non-zero value marks a defect pixel.

Decisions: ``list_defects`` returns every sample-type folder of a split, ``good`` first, then the
defect types in alphabetical order. ``scan_paths`` raises when a split holds no scans at all,
since that is always a mistake in the path. Category, split and defect of a scan are read from
its path when it follows the layout, and left empty otherwise (a single scan given to ``infer``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from st3d_edge.errors import St3dError, file_error

SPLITS = ("train", "validation", "test")
# The largest scan read (H x W): 2**26 pixels (e.g. 8192 x 8192, 805 MB as float32 xyz). A
# compressed TIFF of a few kilobytes can claim gigabytes; it is refused from its header.
MAX_IMAGE_PIXELS = 1 << 26
XYZ_SUFFIXES = (".tiff", ".tif")


@dataclass
class Scan:
    """One scan. Organized scans have a pixel grid (``xyz``, ``valid``, ``pixels``); unorganized
    ones (PLY, PCD, N x 3 arrays, text; see :mod:`st3d_edge.data.readers`) have None there and
    ``gt``, when given, is per point."""

    path: Path
    xyz: np.ndarray | None  # (H, W, 3) float32; invalid pixels are as stored in the file
    valid: np.ndarray | None  # (H, W) bool
    gt: np.ndarray | None  # (H, W) bool, or (m,) bool per point when unorganized; None: no mask
    points: np.ndarray  # (m, 3) float32, the valid pixels in row-major order (or the valid points)
    pixels: np.ndarray | None  # (m, 2) int32 (row, col) of each point
    category: str
    split: str
    defect: str | None  # None for good samples
    name: str

    @property
    def organized(self) -> bool:
        return self.pixels is not None


def read_xyz(path: str | Path) -> np.ndarray:
    """The (H, W, 3) float32 organized point cloud of an xyz TIFF, or a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "file not found")
    xyz = read_tiff_array(path)
    if xyz.ndim != 3 or xyz.shape[2] != 3:
        raise file_error(path, f"expected an H x W x 3 point cloud, got an image of shape {xyz.shape}")
    if not np.issubdtype(xyz.dtype, np.floating):
        raise file_error(path, f"expected float coordinates, got {xyz.dtype}")
    return np.ascontiguousarray(xyz, dtype=np.float32)


def read_tiff_array(path: Path) -> np.ndarray:
    """The first image of a TIFF, its size checked before it is decoded, or a one-line error."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            check_image_size(path, series.shape)  # before decoding: a small file may expand hugely
            return series.asarray()
    except St3dError:
        raise
    except Exception as exc:  # tifffile raises many types for damaged files
        raise file_error(path, f"not a readable TIFF ({type(exc).__name__}: {exc})".splitlines()[0]) from None


def check_image_size(path: Path, shape: tuple[int, ...]) -> None:
    pixels = int(np.prod(shape[:2], dtype=np.int64)) if len(shape) >= 2 else 0
    if pixels > MAX_IMAGE_PIXELS:
        raise file_error(
            path,
            f"image of {' x '.join(map(str, shape))} has {pixels} pixels, more than the maximum "
            f"{MAX_IMAGE_PIXELS} (st3d_edge.data.mvtec.MAX_IMAGE_PIXELS); not decoded",
        )


def valid_mask(xyz: np.ndarray) -> np.ndarray:
    """Valid pixels: not all three coordinates zero, and all finite."""
    from st3d_edge.data.valid_points import valid_mask_numpy

    return valid_mask_numpy(xyz)


def read_gt(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A ground-truth PNG as a bool mask that must be ``shape`` (H, W)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            check_image_size(path, (image.height, image.width))
            mask = np.asarray(image)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise file_error(path, f"not a readable image ({exc})".splitlines()[0]) from None
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    if mask.shape != tuple(shape):
        gt_size = f"{mask.shape[0]}x{mask.shape[1]}"
        raise file_error(path, f"ground truth is {gt_size}, the xyz image is {shape[0]}x{shape[1]}")
    return mask > 0


def path_layout(xyz_path: Path) -> tuple[str, str, str | None]:
    """(category, split, defect) from a path in the dataset layout, else empty strings."""
    parts = xyz_path.parts
    if len(parts) >= 5 and parts[-2] == "xyz" and parts[-4] in SPLITS:
        kind = parts[-3]
        return parts[-5], parts[-4], None if kind == "good" else kind
    return "", "", None


def read_scan(xyz_path: str | Path, gt_path: str | Path | None = None) -> Scan:
    """Read one scan; the gt mask is ``../gt/<name>.png`` beside the xyz folder unless given."""
    xyz_path = Path(xyz_path)
    return organized_scan(xyz_path, read_xyz(xyz_path), gt_path)


def organized_scan(xyz_path: Path, xyz: np.ndarray, gt_path: str | Path | None = None) -> Scan:
    """A Scan of an organized (H, W, 3) float32 cloud read from ``xyz_path`` (any format)."""
    from st3d_edge.data.valid_points import valid_points

    valid, points, pixels = valid_points(xyz)
    if not valid.any():
        raise file_error(xyz_path, "no valid pixels (every point is zero or not finite)")
    if gt_path is None:
        guess = xyz_path.parent.parent / "gt" / f"{xyz_path.stem}.png"
        gt_path = guess if xyz_path.parent.name == "xyz" and guess.is_file() else None
    gt = None if gt_path is None else read_gt(gt_path, valid.shape)
    category, split, defect = path_layout(xyz_path)
    return Scan(
        path=xyz_path,
        xyz=xyz,
        valid=valid,
        gt=gt,
        points=points,
        pixels=pixels,
        category=category,
        split=split,
        defect=defect,
        name=xyz_path.stem,
    )


def _folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise file_error(path, f"{what} not found")
    return path


def list_categories(root: str | Path) -> list[str]:
    """Category folders of a dataset root (those holding a train, validation or test folder)."""
    root = _folder(Path(root), "dataset root")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and any((p / s).is_dir() for s in SPLITS))
    if not names:
        raise file_error(root, "no categories found (expected <root>/<category>/train/good/xyz/*.tiff)")
    return names


def list_defects(root: str | Path, category: str, split: str) -> list[str]:
    """Sample types of a split: ``good`` first, then the defect types alphabetically."""
    _folder(Path(root), "dataset root")
    _folder(Path(root) / category, f"category {category!r}")
    folder = _folder(Path(root) / category / split, f"split {split!r}")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    return sorted(names, key=lambda name: (name != "good", name))


def scan_paths(root: str | Path, category: str, split: str) -> list[Path]:
    """Every xyz TIFF of a split (all sample types), sorted by path."""
    folder = Path(root) / category / split
    paths = []
    for kind in list_defects(root, category, split):
        xyz_dir = folder / kind / "xyz"
        if xyz_dir.is_dir():
            paths += sorted(p for p in xyz_dir.iterdir() if p.suffix.lower() in XYZ_SUFFIXES)
    if not paths:
        raise file_error(folder, "no scans found (expected <type>/xyz/*.tiff)")
    return sorted(paths)


def good_scan_paths(root: str | Path, category: str, split: str) -> list[Path]:
    """The xyz TIFFs of a split's ``good`` parts only (what training and thresholds may use)."""
    return [p for p in scan_paths(root, category, split) if p.parent.parent.name == "good"]


def iter_scans(root: str | Path, category: str, split: str) -> Iterator[Scan]:
    """Scans of a split, read one at a time; a missing folder is reported at the call, not later."""
    paths = scan_paths(root, category, split)
    return (read_scan(path) for path in paths)
