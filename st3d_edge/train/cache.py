"""Sampled clouds and their kNN graphs, computed once and kept on disk in the run folder's ``cache/``.

Both trainings visit every cloud many times; FPS and kNN of a cloud do not change between
epochs, so each cloud is reduced to n points with the configured sampler once, its kNN graph is
built once, and both are stored as one ``.npz`` (``points`` float32 (m, 3) in the source's units,
``knn`` int32 (m, k), self first, and the neighbour-distance sum and count that eq. (4) needs).
A file's name is a hash of everything that determines its content (source, n, k, sampler,
seed, ...), so changing a setting never reads a stale entry, and an entry is written atomically,
so an interrupted run never leaves half a file. Several processes may fill one cache at once
(data-parallel ranks): they write distinct entries, and the same entry twice is harmless.

This module is numpy-only; torch enters in the trainers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from st3d_edge.errors import file_error
from st3d_edge.io_utils import atomic_path

CACHE_FORMAT = 2  # 2: sampled points in locality order


@dataclass
class Cloud:
    points: np.ndarray  # (m, 3) float32, the source's units
    knn: np.ndarray  # (m, k) int32, the point itself in column 0
    distance_sum: float  # sum of distances to the k - 1 true neighbours (eq. 4)
    distance_count: int


def cache_key(settings: dict) -> str:
    text = json.dumps({"format": CACHE_FORMAT, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def prepare_cloud(points: np.ndarray, n: int, k: int, sampler: str, source: str | Path = "cloud") -> Cloud:
    """Reduce ``points`` to ``min(n, len(points))`` with ``sampler`` and build the kNN graph."""
    from st3d_edge.geometry.knn import knn_indices
    from st3d_edge.geometry.sampling import sample_indices
    from st3d_edge.geometry.scale import knn_distance_sum

    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 3:
        raise file_error(source, f"expected an (N, 3) point cloud, got shape {points.shape}")
    if len(points) < k + 1:
        raise file_error(source, f"only {len(points)} valid points; the model needs at least k + 1 = {k + 1}")
    idx = sample_indices(points, n, sampler)
    sampled = np.ascontiguousarray(points[idx], dtype=np.float32)
    knn = np.ascontiguousarray(knn_indices(sampled, k), dtype=np.int32)
    total, count = knn_distance_sum(sampled, knn)
    return Cloud(sampled, knn, float(total), int(count))


def save_cloud(path: Path, cloud: Cloud) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            points=cloud.points,
            knn=cloud.knn,
            distance=np.array([cloud.distance_sum], dtype=np.float64),
            count=np.array([cloud.distance_count], dtype=np.int64),
        )
    return path


def load_cloud(path: Path) -> Cloud:
    try:
        with np.load(path, allow_pickle=False) as data:
            return Cloud(data["points"], data["knn"], float(data["distance"][0]), int(data["count"][0]))
    except FileNotFoundError:
        raise file_error(path, "cache entry not found") from None
    except (ValueError, KeyError, OSError) as exc:
        raise file_error(path, f"damaged cache entry ({exc}); delete the cache folder") from None


def cache_path(cache_dir: Path, settings: dict, n: int, k: int, sampler: str) -> Path:
    from st3d_edge.geometry.sampling import implementation

    # keyed on what samples (grid or bucket FPS for "fps"), not on the name alone
    key = cache_key({**settings, "n": n, "k": k, "sampler": implementation(sampler)})
    return Path(cache_dir) / f"{settings.get('kind', 'cloud')}-{key}.npz"


def cached_cloud(
    cache_dir: Path, settings: dict, make_points: Callable[[], np.ndarray], n: int, k: int, sampler: str
) -> Path:
    """The cache file for ``settings`` (which must identify the source), created on a miss."""
    path = cache_path(cache_dir, settings, n, k, sampler)
    if not path.is_file():
        source = settings.get("path", settings.get("kind", "cloud"))
        save_cloud(path, prepare_cloud(make_points(), n, k, sampler, source=source))
    return path


def file_identity(path: Path) -> dict:
    """What makes a source file's cache entry stale: its resolved path, size and change time."""
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class CloudSet:
    """The cache files of one split, loaded on demand and kept in memory while they fit ``memory_budget``."""

    def __init__(self, paths: list[Path], memory_budget: int = 1 << 30) -> None:
        self.paths = list(paths)
        self.memory_budget = memory_budget
        self._memo: dict[int, Cloud] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Cloud:
        cloud = self._memo.get(i)
        if cloud is None:
            cloud = load_cloud(self.paths[i])
            size = cloud.points.nbytes + cloud.knn.nbytes
            if self._bytes + size <= self.memory_budget:
                self._memo[i] = cloud
                self._bytes += size
        return cloud

    def scale(self) -> float:
        """s of eq. (4) over all clouds of the set, from the sums stored in each entry."""
        from st3d_edge.geometry.scale import scale_s

        return scale_s(self.scale_pairs())

    def scale_pairs(self, indices=None) -> list[tuple[float, int]]:
        """(distance sum, count) of each cloud, as ``geometry.scale.knn_distance_sum`` returned them."""
        chosen = range(len(self)) if indices is None else indices
        pairs = []
        for i in chosen:
            with np.load(self.paths[i], allow_pickle=False) as data:
                pairs.append((float(data["distance"][0]), int(data["count"][0])))
        return pairs


def caching(items: list, label: str, show: bool) -> Iterable:
    """``items`` with a progress bar on stderr when ``show``: building the cache of a paper-scale
    run (FPS and kNN of every cloud) takes tens of minutes before the first epoch starts."""
    if not show:
        return items
    from st3d_edge.console import track

    return track(items, label)
