"""Synthetic data in the exact MVTec 3D-AD layout, with pixel-exact ground truth.

The real dataset cannot be downloaded by the package, so tests, the demo and the benchmarks use
this generator. A sample is one part (see :mod:`st3d_edge.data.shapes`) lying on a background
plane, placed at a random yaw and up to 8 mm off centre, seen from above by the virtual
structured-light camera of :mod:`st3d_edge.data.camera`.

Decisions:

- Sensor noise: Gaussian, 0.05 mm along each pixel's ray; 0.1 % of pixels drop out at random on
  top of the grazing-angle gaps the camera model produces.
- Ground truth: the part is rendered without noise with and without the defect; a pixel is
  defective when its depth changed by more than :data:`GT_EPSILON` or its validity changed. Noise
  and dropouts are added afterwards, so they never enter the mask. Good test samples get an
  all-zero gt image, as in MVTec 3D-AD.
- rgb: a Lambert-shaded render of the same view (the real rgb camera sees every pixel, so invalid
  xyz pixels are still shaded).
- Default counts (:data:`DEFAULT_COUNTS`): 20 train, 5 validation, 5 good test scans and 2 test
  scans per defect type per category: enough for the CPU demo. At 800x800 one xyz TIFF is 7.7 MB,
  so one category at the defaults takes about 0.4 GB.
- Determinism: every sample draws from its own generator seeded by (seed, category, split, type,
  index), so the same seed writes byte-identical files whichever categories are chosen.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from st3d_edge.data.camera import Camera, Render, merge, rays_near_point, render, shadow_drift
from st3d_edge.data.defects import HEIGHT_ADDED, REACH, Defect, draw_defect
from st3d_edge.data.names import CATEGORIES, DEFECTS
from st3d_edge.data.shapes import MAKERS, Part

__all__ = ["CATEGORIES", "DEFECTS", "DEFAULT_COUNTS", "render_sample", "write_dataset"]

DEFAULT_COUNTS = {"train": 20, "validation": 5, "test_good": 5, "test_defect": 2}
DEFAULT_SIZE = (800, 800)
MIN_SIZE = 16  # below this a part covers too few pixels for a defect to be placed
NOISE_STD = 5e-5  # metres along the ray
DROPOUT = 0.001  # fraction of pixels lost at random
GT_EPSILON = 1e-7  # metres; a depth change below this is rounding, not a defect
POSITION_JITTER = 0.008  # metres
PLANE_ALBEDO = (0.55, 0.55, 0.55)
ALBEDO = {
    "tire": (0.18, 0.18, 0.2),
    "bagel": (0.75, 0.5, 0.25),
    "cookie": (0.85, 0.65, 0.4),
    "dowel": (0.85, 0.7, 0.5),
    "foam": (0.9, 0.9, 0.85),
    "potato": (0.8, 0.7, 0.4),
    "carrot": (0.95, 0.5, 0.1),
    "bracket": (0.6, 0.62, 0.65),
    "stepblock": (0.35, 0.4, 0.45),
    "connector": (0.15, 0.15, 0.15),
    "flange": (0.7, 0.7, 0.72),
    "heatsink": (0.8, 0.8, 0.82),
    "gear": (0.45, 0.42, 0.38),
}
LIGHT = np.array([0.4, -0.3, 1.0]) / np.linalg.norm([0.4, -0.3, 1.0])


@dataclass(frozen=True)
class Scene:
    """One part placed on the plane in front of the camera."""

    camera: Camera
    category: str
    part: Part
    centre: tuple[float, float]
    yaw: float

    def height(self, defect: Defect | None = None):
        """The scene's world height field, with ``defect`` applied if given."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        cx, cy = self.centre

        def field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            u = c * (x - cx) + s * (y - cy)
            v = -s * (x - cx) + c * (y - cy)
            h = self.part.height(u, v)
            return h if defect is None else defect.edit(u, v, h)

        return field

    @property
    def z_top(self) -> float:
        return self.part.top + HEIGHT_ADDED + 0.001

    def to_world(self, u: float, v: float) -> tuple[float, float]:
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return (self.centre[0] + c * u - s * v, self.centre[1] + s * u + c * v)

    def render(self, defect: Defect | None = None, select: np.ndarray | None = None) -> Render:
        reach = self.part.radius + REACH
        cx, cy = self.centre
        bbox = (cx - reach, cx + reach, cy - reach, cy + reach)
        return render(self.camera, self.height(defect), self.z_top, bbox, select)

    def rays_near(self, defect: Defect) -> np.ndarray:
        """(H, W) mask of the pixels whose rays (or their shadow segments) pass near enough to
        ``defect`` to be changed by it."""
        drift = shadow_drift(self.camera, self.z_top, self.part.radius + REACH + POSITION_JITTER)
        return rays_near_point(self.camera, self.z_top, self.to_world(*defect.centre), defect.reach + drift)


def draw_scene(category: str, rng: np.random.Generator, size: tuple[int, int]) -> Scene:
    if category not in MAKERS:
        raise ValueError(f"unknown category {category!r}; choose from {', '.join(CATEGORIES)}")
    part = MAKERS[category](rng)
    centre = tuple(float(c) for c in rng.uniform(-POSITION_JITTER, POSITION_JITTER, 2))
    yaw = float(rng.uniform(0, 2 * np.pi))
    return Scene(Camera(*size), category, part, centre, yaw)  # type: ignore[arg-type]


def changed_pixels(before: Render, after: Render) -> np.ndarray:
    """The ground truth: pixels whose noise-free depth or validity differs between two renders."""
    return (before.valid != after.valid) | (np.abs(before.depth - after.depth) > GT_EPSILON)


def min_defect_pixels(size: tuple[int, int]) -> int:
    """A drawn defect that changes fewer pixels than this is redrawn (e.g. one that missed the part)."""
    return max(3, int(2e-4 * size[0] * size[1]))


@dataclass
class SyntheticScan:
    xyz: np.ndarray  # (H, W, 3) float32, camera frame, metres; invalid pixels all zero
    gt: np.ndarray  # (H, W) bool
    rgb: np.ndarray  # (H, W, 3) uint8
    clean: Render  # the noise-free render the xyz was made from


def render_defective(scene: Scene, kind: str, rng: np.random.Generator) -> tuple[Render, Render, np.ndarray]:
    """(good render, defective render, gt) for a defect of ``kind`` drawn on ``scene``'s part.

    Only the rays passing near the defect differ between the two renders (each ray samples the
    scene along itself only), so the good render is solved for those rays alone and the rest is
    copied from the defective one; a test compares this with two full renders.
    """
    for _ in range(20):
        defect = draw_defect(kind, rng, scene.part)
        bad = scene.render(defect)
        near = scene.rays_near(defect)
        good = merge(bad, scene.render(None, select=near), near)
        gt = changed_pixels(good, bad)
        if gt.sum() >= min_defect_pixels((scene.camera.height, scene.camera.width)):
            return good, bad, gt
    raise RuntimeError(f"could not place a visible {kind} on a {scene.category} at this resolution")


def add_sensor_noise(clean: Render, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    depth = clean.depth + rng.normal(0.0, NOISE_STD, clean.depth.shape)
    xyz = clean.xyz(camera, depth)
    xyz[rng.random(clean.depth.shape) < DROPOUT] = 0.0
    return xyz.astype(np.float32)


def shade(clean: Render, category: str) -> np.ndarray:
    lambert = 0.3 + 0.7 * np.clip(np.einsum("ijk,k->ij", clean.normal, LIGHT), 0.0, 1.0)
    on_part = clean.world[..., 2] > 1e-9
    albedo = np.where(on_part[..., None], np.array(ALBEDO[category]), np.array(PLANE_ALBEDO))
    return np.clip(np.round(255.0 * albedo * lambert[..., None]), 0, 255).astype(np.uint8)


def render_sample(
    category: str, rng: np.random.Generator, size: tuple[int, int] = DEFAULT_SIZE, defect: str | None = None
) -> SyntheticScan:
    """One scan of a random part of ``category``, good or with a defect of type ``defect``."""
    scene = draw_scene(category, rng, size)
    if defect is None:
        clean = scene.render()
        gt = np.zeros(size, dtype=bool)
    else:
        if defect not in DEFECTS:
            raise ValueError(f"unknown defect {defect!r}; choose from {', '.join(DEFECTS)}")
        _, clean, gt = render_defective(scene, defect, rng)
    return SyntheticScan(add_sensor_noise(clean, scene.camera, rng), gt, shade(clean, category), clean)


def sample_rng(seed: int, category: str, split: str, kind: str, index: int) -> np.random.Generator:
    """The generator of one sample, independent of which other samples are written."""
    keys = [zlib.crc32(name.encode()) for name in (category, split, kind)]
    return np.random.default_rng(np.random.SeedSequence([seed, *keys, index]))


def dataset_plan(
    categories, train: int, validation: int, test_good: int, test_defect: int, defects
) -> list[tuple[str, str, str, int]]:
    """Every sample to write as (category, split, type, index), in writing order."""
    plan = []
    for category in categories:
        plan += [(category, "train", "good", i) for i in range(train)]
        plan += [(category, "validation", "good", i) for i in range(validation)]
        plan += [(category, "test", "good", i) for i in range(test_good)]
        for kind in defects:
            plan += [(category, "test", kind, i) for i in range(test_defect)]
    return plan


def write_dataset(
    out: str | Path,
    categories: list[str] | tuple[str, ...] | None = None,
    train: int = DEFAULT_COUNTS["train"],
    validation: int = DEFAULT_COUNTS["validation"],
    test_good: int = DEFAULT_COUNTS["test_good"],
    test_defect: int = DEFAULT_COUNTS["test_defect"],
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
    progress: bool = True,
    defects: list[str] | tuple[str, ...] | None = None,
) -> Path:
    """Write ``<out>/<category>/{train,validation,test}/<type>/{xyz,rgb,gt}/NNN.{tiff,png}``.

    Each category is assembled in a temporary folder and moved into place when complete, so an
    interrupted run leaves no half-written category and a rerun replaces the old one cleanly.
    Returns ``out``.
    """
    from st3d_edge.data.writer import write_scan_files
    from st3d_edge.errors import St3dError
    from st3d_edge.io_utils import atomic_dir

    out = Path(out)
    categories = tuple(CATEGORIES if categories is None else categories)
    defects = tuple(DEFECTS if defects is None else defects)
    for name, known in ((categories, CATEGORIES), (defects, DEFECTS)):
        unknown = sorted(set(name) - set(known))
        if unknown:
            raise St3dError(f"unknown name(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if min(size) < MIN_SIZE:
        raise St3dError(f"image size {size[0]}x{size[1]} is too small: at least {MIN_SIZE}x{MIN_SIZE}")
    if min(train, validation, test_good, test_defect) < 0:
        raise St3dError("sample counts must not be negative")
    plan = dataset_plan(categories, train, validation, test_good, test_defect, defects)
    jobs = iter(plan)
    if progress:
        from st3d_edge.console import track

        jobs = track(plan, "synth", total=len(plan))
    per_category = len(plan) // len(categories) if categories else 0
    try:
        for category in categories:
            with atomic_dir(out / category) as staging:
                for _ in range(per_category):
                    _, split, kind, index = next(jobs)
                    rng = sample_rng(seed, category, split, kind, index)
                    scan = render_sample(category, rng, size, None if kind == "good" else kind)
                    folder = staging / split / kind
                    write_scan_files(folder, f"{index:03d}", scan, with_gt=split == "test")
        next(jobs, None)  # lets the progress bar count the last sample and finish
    finally:
        if hasattr(jobs, "close"):
            jobs.close()
    return out
