"""The geometric score of the shipped scorer: FPFH descriptors against a bank of good ones.

The learned descriptors of 3D-ST miss smooth, low bumps that a hand-crafted local descriptor
sees (measured on held-out synthetic families, see the README), so the shipped scorer adds
the distance of each sampled point's FPFH descriptor (:mod:`st3d_edge.geometry.fpfh`, numpy,
no Open3D on the edge) to its nearest neighbour in a coreset of the training scans'
descriptors (:mod:`st3d_edge.calibration.memory_bank`), and fuses it with the student's
error (:mod:`st3d_edge.calibration.fusion`).

Radii are multiples of the model's point spacing ``s`` (eq. 4), so they follow the sampled
density as the network's input scaling does: normals in ``2 s``, histograms in ``5 s``
(Open3D's registration defaults relative to the spacing). The bank is bounded
(:data:`MAX_BANK`) so the edge cost of a query stays small whatever the training set size.

Saved in a run folder as ``geometric/bank.npy`` and ``geometric/geometric.json``; the export
bundle carries the same two things.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from st3d_edge.blas_threads import one_blas_thread
from st3d_edge.calibration.memory_bank import CORESET_FRACTION, MemoryBank, build_bank
from st3d_edge.errors import file_error
from st3d_edge.geometry.eigen3 import SOLVERS
from st3d_edge.geometry.fpfh import FEATURE_NN, FEATURE_RADIUS_S, NORMAL_NN, NORMAL_RADIUS_S
from st3d_edge.io_utils import atomic_path, write_json_atomic

MAX_BANK = 16384
BANK_EPS = 1.0  # measured: the bank query 3x faster, AU-PRO unchanged on held-out families (README)
NORMALS = "closed-form"  # measured: the normals 20x faster, equal to ~1e-15 (README)
# (int64[m, K] indices, float64[m, K] distances): each point's nearest points, itself first
Neighbours = tuple[np.ndarray, np.ndarray]
BANK_FILE = "bank.npy"
SETTINGS_FILE = "geometric.json"


@dataclass(frozen=True)
class GeometricSettings:
    s: float  # the model's point spacing; radii are multiples of it
    normal_radius_s: float = NORMAL_RADIUS_S
    feature_radius_s: float = FEATURE_RADIUS_S
    normal_nn: int = NORMAL_NN
    feature_nn: int = FEATURE_NN
    # the bank query's approximation: a bank entry at most (1 + bank_eps) times farther than
    # the nearest (0: exact); runs and bundles without the field get this default
    bank_eps: float = BANK_EPS
    # the normals' eigen solver (st3d_edge.geometry.eigen3.SOLVERS; "lapack": numpy's bits);
    # runs and bundles without the field get this default
    normals: str = NORMALS

    def check(self, where: str | Path = "geometric settings") -> None:
        numbers = (self.s, self.normal_radius_s, self.feature_radius_s)
        if not all(isinstance(v, (int, float)) and np.isfinite(v) and v > 0 for v in numbers):
            raise file_error(where, f"s and the radii must be positive numbers, got {asdict(self)}")
        eps = self.bank_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (np.isfinite(eps) and eps >= 0):
            raise file_error(where, f"bank_eps must be a number >= 0, got {eps!r}")
        if self.normals not in SOLVERS:
            raise file_error(where, f"normals must be one of {', '.join(SOLVERS)}, got {self.normals!r}")
        for name in ("normal_nn", "feature_nn"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 3:
                raise file_error(where, f"{name} must be an integer >= 3, got {value!r}")


def describe(
    points: np.ndarray, settings: GeometricSettings, neighbours: Neighbours | None = None
) -> np.ndarray:
    """float32[m, 33] FPFH descriptors of sampled points with the settings' radii;
    ``neighbours``: nearest-first lists the caller has (see :func:`st3d_edge.geometry.fpfh.fpfh`)."""
    from st3d_edge.geometry.fpfh import fpfh

    s = settings.s
    return fpfh(
        points,
        settings.normal_radius_s * s,
        settings.feature_radius_s * s,
        normal_nn=settings.normal_nn,
        feature_nn=settings.feature_nn,
        neighbours=neighbours,
        normals_solver=settings.normals,
    )


class GeometricScore:
    """Sampled points -> float32[m] distance of their descriptors to the good bank."""

    def __init__(self, settings: GeometricSettings, bank: np.ndarray) -> None:
        self.settings = settings
        self.bank = MemoryBank(bank)

    def __call__(self, points: np.ndarray, neighbours: Neighbours | None = None) -> np.ndarray:
        with one_blas_thread():
            return self.bank.distances(describe(points, self.settings, neighbours), self.settings.bank_eps)

    @property
    def neighbour_count(self) -> int:
        """How many nearest neighbours of each point the descriptors read."""
        from st3d_edge.geometry.fpfh import neighbour_count

        return neighbour_count(self.settings.normal_nn, self.settings.feature_nn)

    @classmethod
    def fit(
        cls, clouds: Iterable[np.ndarray], settings: GeometricSettings, fraction: float = CORESET_FRACTION
    ) -> GeometricScore:
        """The bank from the sampled points of good training clouds."""
        return cls(settings, build_bank((describe(c, settings) for c in clouds), fraction, MAX_BANK))

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / BANK_FILE) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, self.bank.bank)
        write_json_atomic(folder / SETTINGS_FILE, asdict(self.settings))
        return folder

    @classmethod
    def load(cls, folder: str | Path, bank_file: str = BANK_FILE) -> GeometricScore:
        import json

        folder = Path(folder)
        settings_path = folder / SETTINGS_FILE
        try:
            data = json.loads(settings_path.read_text())
            known = GeometricSettings.__dataclass_fields__
            settings = GeometricSettings(**{k: data[k] for k in known if k in data})
        except FileNotFoundError:
            raise file_error(settings_path, "file not found") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise file_error(settings_path, f"not valid geometric settings ({exc})") from None
        settings.check(settings_path)
        return cls(settings, load_bank(folder / bank_file))


def load_bank(path: Path) -> np.ndarray:
    """A (B, 33) float32 bank from ``.npy`` (never a pickle), or one line naming the problem."""
    try:
        bank = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise file_error(path, "file not found") from None
    except ValueError as exc:
        raise file_error(path, f"not a plain .npy array ({exc})") from None
    if bank.ndim != 2 or bank.shape[0] == 0 or bank.shape[1] != 33 or not np.isfinite(bank).all():
        raise file_error(path, f"not a memory bank of finite 33-bin descriptors (shape {bank.shape})")
    return bank.astype(np.float32)
