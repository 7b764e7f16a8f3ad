"""Training-set statistics of 3D-ST: the scale s (eq. 4) and the teacher feature moments mu, sigma.

Decisions the paper leaves open:

- mu and sigma are accumulated in float64 and streamed one cloud at a time (Chan et al.'s
  pairwise update of count, mean and sum of squared deviations), so the whole training set's
  features never sit in memory at once and a data-parallel run can merge its ranks' partial
  moments exactly the same way (:meth:`RunningMoments.merge`).
- sigma is the population standard deviation (divide by the count, not count - 1): with
  tens of thousands of points per cloud the difference is immaterial, and it is what
  "unit standard deviation" of the normalized teacher features means.
- A channel with zero spread (a dead unit) would divide by zero in eq. (5); its sigma is
  floored at ``SIGMA_FLOOR`` so that channel simply contributes its (constant) student error.
- Saved as ``scale.json`` (s and the counts), ``mu.npy`` and ``sigma.npy`` (float32): no pickles.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from st3d_edge.errors import file_error
from st3d_edge.io_utils import atomic_path, write_json_atomic

SIGMA_FLOOR = 1e-6


class RunningMoments:
    """Per-channel count, mean and sum of squared deviations, updated one batch of features at a time."""

    def __init__(self, d: int) -> None:
        self.d = int(d)
        self.count = 0
        self._mean = np.zeros(self.d, dtype=np.float64)
        self._m2 = np.zeros(self.d, dtype=np.float64)

    def update(self, features) -> None:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"expected features of shape (n, {self.d}), got {x.shape}")
        if x.shape[0] == 0:
            return
        batch_mean = x.mean(axis=0)
        batch_m2 = ((x - batch_mean) ** 2).sum(axis=0)
        self._combine(x.shape[0], batch_mean, batch_m2)

    def merge(self, other: RunningMoments) -> None:
        """Fold another accumulator into this one (e.g. the partial moments of another rank)."""
        if other.d != self.d:
            raise ValueError(f"cannot merge moments of dimension {other.d} into {self.d}")
        if other.count:
            self._combine(other.count, other._mean, other._m2)

    def _combine(self, n_b: int, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + delta**2 * (n_a * n_b / n)
        self.count = n

    def state(self) -> tuple[int, np.ndarray, np.ndarray]:
        """(count, mean, m2) in float64, e.g. to send to another process."""
        return self.count, self._mean.copy(), self._m2.copy()

    @classmethod
    def from_state(cls, count: int, mean, m2) -> RunningMoments:
        mean = np.asarray(mean, dtype=np.float64)
        moments = cls(mean.shape[0])
        moments.count = int(count)
        moments._mean = mean.copy()
        moments._m2 = np.asarray(m2, dtype=np.float64).copy()
        return moments

    @property
    def mean(self) -> np.ndarray:
        if self.count == 0:
            raise ValueError("no features seen yet")
        return self._mean.copy()

    @property
    def std(self) -> np.ndarray:
        if self.count == 0:
            raise ValueError("no features seen yet")
        return np.maximum(np.sqrt(self._m2 / self.count), SIGMA_FLOOR)


def save_stats(directory: str | Path, s: float, mu, sigma, **extra) -> Path:
    """Write ``scale.json``, ``mu.npy`` and ``sigma.npy`` into ``directory`` (each atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mu = np.asarray(mu, dtype=np.float32)
    sigma = np.asarray(sigma, dtype=np.float32)
    if mu.shape != sigma.shape or mu.ndim != 1:
        raise ValueError(f"mu {mu.shape} and sigma {sigma.shape} must be equal 1-d shapes")
    for name, array in (("mu.npy", mu), ("sigma.npy", sigma)):
        with atomic_path(directory / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
    write_json_atomic(directory / "scale.json", {"s": float(s), **extra})
    return directory


def load_scale(path: str | Path) -> float:
    """The ``s`` of a ``scale.json`` file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        s = float(data["s"])
    except FileNotFoundError:
        raise file_error(path, "file not found") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise file_error(path, "not a scale file (expected JSON with a number 's')") from None
    if not np.isfinite(s) or s <= 0:
        raise file_error(path, f"scale s must be a positive number, got {s}")
    return s


def load_stats(directory: str | Path) -> tuple[float, np.ndarray, np.ndarray]:
    """(s, mu, sigma) from a folder written by :func:`save_stats`."""
    directory = Path(directory)
    s = load_scale(directory / "scale.json")
    arrays = []
    for name in ("mu.npy", "sigma.npy"):
        path = directory / name
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except FileNotFoundError:
            raise file_error(path, "file not found") from None
        except ValueError as exc:
            raise file_error(path, f"not a NumPy array file ({exc})") from None
    mu, sigma = arrays
    if mu.ndim != 1 or mu.shape != sigma.shape:
        raise file_error(directory, f"mu.npy {mu.shape} and sigma.npy {sigma.shape} do not match")
    if not (sigma > 0).all():
        raise file_error(directory / "sigma.npy", "sigma must be positive everywhere")
    return s, mu.astype(np.float32), sigma.astype(np.float32)
