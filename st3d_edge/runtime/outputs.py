"""What ``st3d-edge infer`` writes per scan, every file atomically.

* ``<name>_map.tiff``: the anomaly map, float32, the scan's H x W. Invalid pixels (no 3D point)
  are 0: scores are distances, so 0 reads as "no evidence of a defect", and the file stays
  usable by tools that choke on NaN; the valid mask is the scan's own (all-zero xyz).
* ``<name>_heatmap.png``: the map through matplotlib's "inferno" colour scale (a built-in copy
  of its table, :mod:`st3d_edge.runtime.inferno`). The scale runs from 0 to twice the bundle's pixel
  threshold when the bundle has one, so the threshold sits mid-scale and colours compare across
  scans; without it, from 0 to the scan's own maximum. Invalid pixels are mid grey.
* ``<name>.ply`` (with ``--ply``): the scan's valid points, binary little-endian PLY with
  ``float x, y, z; uchar red, green, blue; float score`` per vertex, coloured like the heatmap.
* ``<name>_overlay.png`` and ``<name>_mask.png`` (``--overlay``, ``--mask``): see
  :mod:`st3d_edge.runtime.overlay`.
* Unorganized scans (no pixel grid) get ``<name>.ply`` always (the per-point map), and
  ``<name>.pcd`` (binary, fields ``x y z score``) too when the input was a PCD.
* ``results.jsonl``: one JSON object per scan attempt, appended (file, image score, verdict,
  per-stage ms, the scan's identity, provenance; or ``error`` for a scan that failed). The
  last record of a file is the one that counts.

Names: ``<name>`` is the scan's path relative to the common folder of all inputs, with the
suffix and any ``xyz`` folder dropped and ``/`` turned into ``_`` (``crack/xyz/000.tiff`` ->
``crack_000``), so the scans of an MVTec-style tree do not overwrite each other. Scans that
would share a name (``scan.ply`` beside ``scan.pcd``) keep their extension (``scan_ply``).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from st3d_edge.errors import file_error
from st3d_edge.io_utils import atomic_path

RESULTS_NAME = "results.jsonl"
_TAIL_BYTES = 1 << 20
INVALID_RGB = (128, 128, 128)


def colormap(values: np.ndarray, vmax: float) -> np.ndarray:
    """uint8 RGB (..., 3) of ``values / vmax`` clipped to [0, 1] on the inferno scale; NaN maps to 0."""
    from st3d_edge.runtime.inferno import lookup

    scale = float(vmax) if np.isfinite(vmax) and vmax > 0 else 1.0
    t = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64) / scale, nan=0.0), 0.0, 1.0)
    return lookup(t)


def colour_scale_max(values: np.ndarray, pixel_threshold: float | None) -> float:
    if pixel_threshold is not None and np.isfinite(pixel_threshold) and pixel_threshold > 0:
        return 2.0 * float(pixel_threshold)
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else 1.0


def write_map_tiff(path: str | Path, anomaly_map: np.ndarray) -> Path:
    import tifffile

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.asarray(anomaly_map, dtype=np.float32))
    return Path(path)


def heatmap_rgb(anomaly_map: np.ndarray, valid: np.ndarray, vmax: float) -> np.ndarray:
    rgb = colormap(anomaly_map, vmax)
    rgb[~valid] = INVALID_RGB
    return rgb


def write_heatmap_png(path: str | Path, anomaly_map: np.ndarray, valid: np.ndarray, vmax: float) -> Path:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(heatmap_rgb(anomaly_map, valid, vmax), mode="RGB").save(tmp, format="PNG")
    return Path(path)


PLY_VERTEX = np.dtype(
    [
        ("x", "<f4"),
        ("y", "<f4"),
        ("z", "<f4"),
        ("red", "u1"),
        ("green", "u1"),
        ("blue", "u1"),
        ("score", "<f4"),
    ]
)


def write_ply(path: str | Path, points: np.ndarray, scores: np.ndarray, vmax: float) -> Path:
    """Binary little-endian PLY of the points coloured by score (any 3D viewer opens it)."""
    vertices = np.empty(len(points), dtype=PLY_VERTEX)
    for i, axis in enumerate("xyz"):
        vertices[axis] = points[:, i]
    rgb = colormap(scores, vmax)
    for i, channel in enumerate(("red", "green", "blue")):
        vertices[channel] = rgb[:, i]
    vertices["score"] = scores
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment st3d-edge anomaly scores\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        "property float score\nend_header\n"
    )
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(header.encode("ascii"))
            fh.write(vertices.tobytes())
    return Path(path)


def write_pcd(path: str | Path, points: np.ndarray, scores: np.ndarray) -> Path:
    """Binary PCD with ``x y z score`` per point (PCL and ROS tools read it)."""
    from pypcd4 import Encoding, PointCloud

    columns = [np.asarray(points[:, i], dtype=np.float32) for i in range(3)]
    cloud = PointCloud.from_points(
        [*columns, np.asarray(scores, dtype=np.float32)], ("x", "y", "z", "score"), (np.float32,) * 4
    )
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            cloud.save(fh, encoding=Encoding.BINARY)
    return Path(path)


def write_scan_outputs(
    out: Path,
    name: str,
    result,
    pixel_threshold: float | None,
    *,
    ply: bool,
    pcd: bool = False,
    overlay: bool = False,
    mask: bool = False,
) -> dict[str, Path]:
    """Write one scored scan's files (see the module docstring); returns them by kind.

    ``overlay`` and ``mask`` add the pictures of :mod:`st3d_edge.runtime.overlay` (organized
    scans only; ``mask`` needs the pixel threshold).
    """
    vmax = colour_scale_max(result.point_scores, pixel_threshold)
    files: dict[str, Path] = {}
    if result.anomaly_map is not None:
        files["map"] = write_map_tiff(out / f"{name}_map.tiff", result.anomaly_map)
        files["heatmap"] = write_heatmap_png(
            out / f"{name}_heatmap.png", result.anomaly_map, result.valid, vmax
        )
        if overlay or mask:
            from st3d_edge.runtime import overlay as pictures

        if overlay:
            files["overlay"] = pictures.write_overlay_png(
                out / f"{name}_overlay.png", result.path, result, vmax, pixel_threshold
            )
        if mask and pixel_threshold is not None:
            files["mask"] = pictures.write_mask_png(
                out / f"{name}_mask.png", result.anomaly_map, result.valid, pixel_threshold
            )
    if ply or result.anomaly_map is None:
        files["ply"] = write_ply(out / f"{name}.ply", result.points, result.point_scores, vmax)
    if pcd and result.anomaly_map is None:
        files["pcd"] = write_pcd(out / f"{name}.pcd", result.points, result.point_scores)
    return files


def read_ply(path: str | Path) -> np.ndarray:
    """Read back a PLY written by :func:`write_ply` (for tests and tools)."""
    data = Path(path).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    return np.frombuffer(data[end:], dtype=PLY_VERTEX)


def output_names(paths: Sequence[Path]) -> dict[Path, str]:
    """A unique file-name stem per input scan (see the module docstring)."""
    resolved = [Path(p).resolve() for p in paths]
    if not resolved:
        return {}
    root = Path(os.path.commonpath([p.parent for p in resolved]))
    names = {}
    for original, path in zip(paths, resolved, strict=True):
        parts = [part for part in path.relative_to(root).with_suffix("").parts if part != "xyz"]
        names[Path(original)] = "_".join(parts)
    # scan.ply beside scan.pcd: the same stem in two formats keeps its extension in the name
    taken = Counter(names.values())
    for original in names:
        if taken[names[original]] > 1:
            names[original] += "_" + Path(original).suffix.lstrip(".").lower()
    return names


def read_results(path: str | Path) -> list[dict]:
    """The records of a results.jsonl, oldest first.

    A last line without its newline is what a killed writer leaves, and is ignored (the next
    writer removes it, :func:`drop_torn_tail`); any other line that is not a JSON object means
    the file is not ours, and is refused rather than silently appended to.
    """
    path = Path(path)
    if path.is_dir():
        raise file_error(path, "is a folder, not a results file; choose another --out")
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    complete = lines[:-1]  # the part after the last newline is empty or torn
    records = []
    for number, line in enumerate(complete, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or "file" not in record:
            raise file_error(
                path, f"line {number} is not a results record; move the file away or choose another --out"
            )
        records.append(record)
    return records


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    """An fd of ``path`` opened for appending, held under an exclusive lock (one writer at a time)."""
    import fcntl

    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def drop_torn_tail(path: str | Path) -> bool:
    """Cut a last line a killed writer left without its newline; True if there was one."""
    path = Path(path)
    if not path.is_file():
        return False
    with _locked(path) as fd:
        size = os.fstat(fd).st_size
        with open(path, "rb") as fh:
            # only the end is read: a torn line is shorter than the tail
            fh.seek(max(0, size - _TAIL_BYTES))
            tail = fh.read()
        if not tail or tail.endswith(b"\n"):
            return False
        os.ftruncate(fd, size - len(tail) + tail.rfind(b"\n") + 1)
        os.fsync(fd)
    return True


def append_result(path: str | Path, record: dict) -> None:
    """Append one scan's record as one JSON line: one write under an exclusive lock, fsynced.

    Strict JSON (a NaN would raise here rather than reach the file). The file is never
    rewritten, so a record costs the same however long the file is, and two processes writing
    the same results lose nothing.
    """
    line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path) as fd:
        written = os.write(fd, line)
        while written < len(line):  # a short write (rare: signals, nearly full disks)
            written += os.write(fd, line[written:])
        os.fsync(fd)


def scan_identity(path: str | Path) -> dict:
    """What "the same scan" means for skipping it: size, modification time and content hash."""
    import hashlib

    path = Path(path)
    try:
        stat = path.stat()
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise file_error(path, f"cannot read it ({exc.strerror})") from None
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest.hexdigest()}


def provenance(bundle: Any) -> dict:
    """What every record says about how it was made: which bundle, thresholds, version, when."""
    from st3d_edge import __version__

    thresholds = getattr(bundle, "thresholds", {}) or {}
    return {
        "bundle_id": getattr(bundle, "manifest_sha256", ""),
        "bundle": str(getattr(bundle, "path", "")),
        "category": getattr(bundle, "category", ""),
        "thresholds": {key: thresholds.get(key) for key in ("image", "pixel")},
        "st3d_edge": __version__,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
    }
