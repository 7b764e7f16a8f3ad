"""Scans from real scanners: organized clouds, unorganized clouds and depth images, in metres.

The reader is chosen by the file's extension and the content is then checked; every problem is
one :class:`~st3d_edge.errors.St3dError` line that names the file.

=====================  =========================================================  ============
extension              content                                                    kind
=====================  =========================================================  ============
``.tiff .tif``         H x W x 3 float (16, 32 or 64 bit)                         organized
``.tiff .tif .png``    H x W depth (16-bit integer or float) + intrinsics         organized
``.npy``               H x W x 3 (organized) or N x 3 (unorganized), float        either
``.npz``               the same, in its only array or the one named xyz/points    either
``.ply``               vertex element with x, y, z; ASCII or binary (plyfile)     unorganized
``.pcd``               fields x, y, z; ascii/binary/binary_compressed (pypcd4)    either [1]_
``.xyz .pts .txt``     text, one point per line, x y z first (spaces or commas)   unorganized
``.csv``
=====================  =========================================================  ============

.. [1] a PCD with HEIGHT > 1 is organized (as ROS and PCL write depth-camera clouds).

Decisions:

- Invalid points: in an organized cloud a pixel whose coordinates are all zero (the MVTec 3D-AD
  convention) or not all finite (NaN marks missing points on structured-light cameras such as
  Zivid) is invalid and gets no score (0 in the map). In an unorganized cloud non-finite points
  are dropped; the output lists the kept points only.
- Units: coordinates are converted to metres, the unit the models are trained in; ``units``
  (``m``, ``mm`` or ``um``) says what the file holds, since none of these formats records it.
- Depth images become organized clouds by :mod:`st3d_edge.data.depth` (pinhole model, the
  intrinsics beside the scan or given).
- Ground truth: an organized scan's mask is a PNG or an H x W ``.npy`` (non-zero = defect; in
  the MVTec layout ``../gt/<name>.png`` is found by itself); an unorganized scan's is a label
  field of the PLY/PCD (one of :data:`LABEL_FIELDS`) or a ``.npy`` of N values given as
  ``gt_path``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from st3d_edge.data.depth import Intrinsics, depth_to_xyz, find_intrinsics
from st3d_edge.data.mvtec import Scan, organized_scan, path_layout, read_gt
from st3d_edge.errors import MissingExtraError, St3dError, file_error

UNITS = {"m": 1.0, "mm": 1e-3, "um": 1e-6}
TIFF_SUFFIXES = (".tiff", ".tif")
TEXT_SUFFIXES = (".xyz", ".pts", ".txt", ".csv")
SCAN_SUFFIXES = (*TIFF_SUFFIXES, ".png", ".npy", ".npz", ".ply", ".pcd", *TEXT_SUFFIXES)
LABEL_FIELDS = ("label", "labels", "gt", "anomaly", "defect")


@dataclass(frozen=True)
class ReadOptions:
    """What a scan file may not say itself: its units, and a depth camera's intrinsics file."""

    units: str = "m"
    intrinsics: str | None = None

    def key(self) -> dict[str, str]:
        """The settings that differ from the defaults (cache keys and run configs record them)."""
        key = {"units": self.units} if self.units != "m" else {}
        if self.intrinsics is not None:
            key["intrinsics"] = str(Path(self.intrinsics).resolve())
        return key

    def points(self, path: str | Path) -> np.ndarray:
        return read_scan(path, units=self.units, intrinsics=self.intrinsics).points


def units_factor(units: str) -> float:
    if units not in UNITS:
        raise St3dError(f"unknown units {units!r}: use one of {', '.join(UNITS)}")
    return UNITS[units]


def read_scan(
    path: str | Path,
    *,
    units: str = "m",
    intrinsics: Intrinsics | str | Path | None = None,
    gt_path: str | Path | None = None,
) -> Scan:
    """Read one scan of any supported format as a :class:`~st3d_edge.data.mvtec.Scan` in metres."""
    path = Path(path)
    factor = units_factor(units)
    if not path.is_file():
        raise file_error(path, "file not found")
    suffix = path.suffix.lower()
    if suffix not in SCAN_SUFFIXES:
        raise file_error(
            path, f"unknown scan format {suffix or '(no extension)'}: use one of {' '.join(SCAN_SUFFIXES)}"
        )
    if suffix in TIFF_SUFFIXES or suffix == ".png":
        array = _read_image(path)
    elif suffix == ".npy":
        array = _load_npy(path)
    elif suffix == ".npz":
        array = _load_npz(path)
    elif suffix == ".ply":
        points, labels = _read_ply(path)
        return _unorganized(path, points * factor, _point_labels(labels, gt_path, len(points)))
    elif suffix == ".pcd":
        array, labels = _read_pcd(path)
        if array.ndim == 2:
            return _unorganized(path, array * factor, _point_labels(labels, gt_path, len(array)))
    else:
        points = _read_text(path)
        return _unorganized(path, points * factor, _point_labels(None, gt_path, len(points)))
    if array.ndim == 2 and suffix in (*TIFF_SUFFIXES, ".png"):
        array = depth_to_xyz(path, array, find_intrinsics(path, intrinsics))
    return array_scan(array, path=path, units=units, gt_path=gt_path)


def read_points(
    path: str | Path, *, units: str = "m", intrinsics: Intrinsics | str | Path | None = None
) -> np.ndarray:
    """The valid points (m, 3) float32, in metres, of a scan of any supported format."""
    return read_scan(path, units=units, intrinsics=intrinsics).points


def array_scan(
    array: Any, *, path: str | Path = "<array>", units: str = "m", gt_path: str | Path | None = None
) -> Scan:
    """A Scan of an (H, W, 3) organized or (N, 3) unorganized array in ``units``."""
    path = Path(path)
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise file_error(path, f"expected numeric coordinates, got {array.dtype}")
    factor = units_factor(units)
    if array.ndim == 3 and array.shape[2] == 3:
        xyz = np.ascontiguousarray(array, dtype=np.float32)
        if factor != 1.0:
            xyz = xyz * np.float32(factor)
        if gt_path is None or Path(gt_path).suffix.lower() != ".npy":
            return organized_scan(path, xyz, gt_path)
        scan = organized_scan(path, xyz)
        scan.gt = read_mask(gt_path, scan.valid.shape)
        return scan
    if array.ndim == 2 and array.shape[1] == 3:
        return _unorganized(
            path, np.asarray(array, dtype=np.float64) * factor, _point_labels(None, gt_path, len(array))
        )
    raise file_error(path, f"expected an H x W x 3 or N x 3 point cloud, got an array of shape {array.shape}")


def _unorganized(path: Path, points: np.ndarray, gt: np.ndarray | None) -> Scan:
    points = np.asarray(points, dtype=np.float64)
    keep = np.isfinite(points).all(axis=1)
    if not keep.any():
        raise file_error(path, "no valid points (every point is not finite)")
    category, split, defect = path_layout(path)
    return Scan(
        path=path,
        xyz=None,
        valid=None,
        gt=None if gt is None else gt[keep],
        points=np.ascontiguousarray(points[keep], dtype=np.float32),
        pixels=None,
        category=category,
        split=split,
        defect=defect,
        name=path.stem,
    )


def _read_image(path: Path) -> np.ndarray:
    from st3d_edge.data.mvtec import check_image_size, read_tiff_array
    from st3d_edge.errors import St3dError

    if path.suffix.lower() in TIFF_SUFFIXES:
        array = read_tiff_array(path)
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                check_image_size(path, (image.height, image.width))
                array = np.asarray(image)
        except St3dError:
            raise
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
            raise file_error(path, _first_line(f"not a readable PNG ({exc})")) from None
        if array.ndim != 2:
            raise file_error(
                path, f"expected a single-channel depth PNG, got an image of shape {array.shape}"
            )
    if array.ndim == 3 and array.shape[2] == 3 and not np.issubdtype(array.dtype, np.floating):
        raise file_error(path, f"expected float coordinates, got {array.dtype} (a colour image?)")
    if array.ndim not in (2, 3) or array.ndim == 3 and array.shape[2] != 3:
        raise file_error(
            path, f"expected an H x W x 3 point cloud or an H x W depth image, got shape {array.shape}"
        )
    return array


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise file_error(path, _first_line(f"not a readable .npy array ({exc})")) from None
    return _numeric(path, array)


def _load_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            name = next((n for n in ("xyz", "points") if n in names), names[0] if len(names) == 1 else None)
            if name is None:
                raise file_error(
                    path, f"holds {len(names)} arrays ({', '.join(names)}); name one 'xyz' or 'points'"
                )
            array = archive[name]
    except St3dError:
        raise
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise file_error(path, _first_line(f"not a readable .npz archive ({exc})")) from None
    return _numeric(path, array)


def _numeric(path: Path, array: np.ndarray) -> np.ndarray:
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise file_error(path, f"expected numeric coordinates, got {array.dtype}")
    if not (array.ndim == 3 and array.shape[2] == 3 or array.ndim == 2 and array.shape[1] == 3):
        raise file_error(
            path, f"expected an H x W x 3 or N x 3 point cloud, got an array of shape {array.shape}"
        )
    return array


def _read_ply(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        from plyfile import PlyData
    except ImportError:
        raise MissingExtraError("plyfile", "runtime", "needed to read PLY files") from None
    try:
        ply = PlyData.read(str(path))
        vertex = ply["vertex"].data
    except KeyError:
        raise file_error(path, "PLY without a vertex element") from None
    except Exception as exc:  # plyfile reports a bad header or body as several types
        raise file_error(path, _first_line(f"not a readable PLY ({type(exc).__name__}: {exc})")) from None
    return _fields_xyz(path, vertex, "PLY")


def _read_pcd(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        from pypcd4 import PointCloud
    except ImportError:
        raise MissingExtraError("pypcd4", "runtime", "needed to read PCD files") from None
    try:
        cloud = PointCloud.from_path(path)
        data = cloud.pc_data
        height, width = int(cloud.metadata.height), int(cloud.metadata.width)
    except Exception as exc:  # pypcd4 reports a bad header (pydantic) or body as several types
        raise file_error(path, _first_line(f"not a readable PCD ({type(exc).__name__}: {exc})")) from None
    points, labels = _fields_xyz(path, data, "PCD")
    if height > 1 and height * width == len(points):
        return points.reshape(height, width, 3), None
    return points, labels


def _fields_xyz(path: Path, data: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    names = data.dtype.names or ()
    missing = [axis for axis in "xyz" if axis not in names]
    if missing:
        raise file_error(
            path, f"{kind} has no {', '.join(missing)} field (fields: {', '.join(names) or 'none'})"
        )
    points = np.stack([np.asarray(data[axis], dtype=np.float64) for axis in "xyz"], axis=1)
    label = next((n for n in LABEL_FIELDS if n in names), None)
    return points, None if label is None else np.asarray(data[label]).reshape(-1) != 0


def _read_text(path: Path) -> np.ndarray:
    try:
        with open(path, encoding="utf-8") as fh:
            first = next((line for line in fh if line.strip() and not line.lstrip().startswith("#")), "")
        delimiter = "," if "," in first else None
        points = np.loadtxt(path, delimiter=delimiter, usecols=(0, 1, 2), comments="#", ndmin=2)
    except (OSError, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise file_error(path, _first_line(f"not a text point cloud of x y z lines ({exc})")) from None
    if len(points) == 0:
        raise file_error(path, "no points")
    return points


def read_point_mask(path: str | Path, count: int) -> np.ndarray:
    """Per-point ground truth: a ``.npy`` of ``count`` values, non-zero = defect."""
    path = Path(path)
    try:
        mask = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise file_error(path, _first_line(f"not a readable .npy mask ({exc})")) from None
    if mask.size != count:
        raise file_error(path, f"holds {mask.size} labels, the scan has {count} points")
    return mask.reshape(-1) != 0


def read_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """An organized scan's ground truth from a PNG or an H x W ``.npy``; non-zero = defect."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        return read_gt(path, shape)
    return read_point_mask(path, shape[0] * shape[1]).reshape(shape)


def _point_labels(labels: np.ndarray | None, gt_path: str | Path | None, count: int) -> np.ndarray | None:
    """The per-point mask: the sidecar file when given, else the file's own label field."""
    if gt_path is not None:
        return read_point_mask(gt_path, count)
    return labels


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text
