"""A virtual structured-light depth camera looking down at a height field on a background plane.

Decisions the paper leaves open (it uses real MVTec 3D-AD scans):

- World frame: z up, the background plane is z = 0. The scene is a height field ``z = h(x, y) >= 0``
  (exactly 0 on the plane), which is what a camera above a part lying on a table sees anyway.
- Camera frame: x right, y down, z forward (OpenCV convention); the xyz image holds camera-frame
  coordinates in metres, z being the distance along the optical axis, as MVTec 3D-AD's xyz TIFFs do.
- Pinhole camera 0.4 m from the plane, tilted 4 degrees about the world x axis so that the plane is
  not at constant depth; the image width covers 0.08 m of the plane whatever the resolution (the
  focal length scales with the width), so small test images show the same scene as 800x800 ones.
- A pixel returns no depth (all-zero xyz) when the camera or the projector (0.08 m beside the
  camera, as in a structured-light scanner) sees its surface at a grazing angle, steeper than
  ``acos(min_cos)`` = 78 degrees, or when the projector's light to it is blocked by the part
  (a projector shadow: beside steep walls a real structured-light scan has holes as wide as the
  wall is tall times the projector's angle, a few millimetres here).
- Intersection: each ray is marched down in fixed steps of world height from ``z_top`` to the plane
  and refined by bisection. Every ray evaluates the height field only along itself, on levels fixed
  by ``z_top``, so changing the scene in one place leaves the other pixels bit-identical; this is
  what makes the defect ground truth exact. Two shortcuts keep an 800x800 render near a second
  and cannot change a result: rays that end far from the part's footprint are solved as plane
  hits without marching, and levels above the part's highest point (sampled on a 0.5 mm grid,
  plus 1 mm) are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

HeightField = Callable[[np.ndarray, np.ndarray], np.ndarray]

MARCH_STEP = 0.0005  # metres of world height per marching step: rays move < 0.1 mm sideways per step
BISECTIONS = 14  # refines a hit to 0.5 mm / 2**14, about 30 nm
NORMAL_DELTA = 1e-5  # metres; finite-difference step for surface normals
FOOTPRINT_CELL = 0.0005  # metres; grid on which the part's footprint is found before marching
HIGHEST_MARGIN = 0.001  # metres added to the grid's highest sample to bound the height between samples


@dataclass(frozen=True)
class Camera:
    height: int
    width: int
    distance: float = 0.4
    field_of_view: float = 0.08
    tilt: float = float(np.deg2rad(4.0))
    projector_offset: float = 0.08
    min_cos: float = 0.2

    @property
    def focal(self) -> float:
        return self.width * self.distance / self.field_of_view

    def rotation(self) -> np.ndarray:
        """Camera-to-world rotation: looking straight down, then tilted about world x."""
        down = np.diag([1.0, -1.0, -1.0])
        c, s = np.cos(self.tilt), np.sin(self.tilt)
        tilt = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
        return tilt @ down

    def centre(self) -> np.ndarray:
        """Camera centre in world coordinates: ``distance`` back from the origin along the axis."""
        return -self.distance * self.rotation()[:, 2]

    def pixel_rays(self) -> np.ndarray:
        """(H*W, 3) camera-frame ray directions (a, b, 1) through the pixel centres, row-major."""
        rows, cols = np.meshgrid(np.arange(self.height), np.arange(self.width), indexing="ij")
        a = (cols.ravel() + 0.5 - self.width / 2) / self.focal
        b = (rows.ravel() + 0.5 - self.height / 2) / self.focal
        return np.stack([a, b, np.ones_like(a)], axis=1)


@dataclass
class Render:
    """A noise-free render: ray parameter (= camera-frame depth), validity, world hits and normals."""

    depth: np.ndarray  # (H, W) float64, camera-frame z of the hit
    valid: np.ndarray  # (H, W) bool
    world: np.ndarray  # (H, W, 3) float64 world hit points
    normal: np.ndarray  # (H, W, 3) float64 unit world normals

    def xyz(self, camera: Camera, depth: np.ndarray | None = None) -> np.ndarray:
        """Camera-frame (H, W, 3) points for ``depth`` (default: the clean depth); invalid = 0."""
        depth = self.depth if depth is None else depth
        rays = camera.pixel_rays().reshape(camera.height, camera.width, 3)
        out = rays * depth[..., None]
        out[~self.valid] = 0.0
        return out


def march(
    height: HeightField,
    origin: np.ndarray,
    dirs: np.ndarray,
    z_top: float,
    active: np.ndarray,
    highest: float | None = None,
) -> np.ndarray:
    """World height of each ray's first hit of ``height`` (0 for rays not in ``active``).

    ``height`` must be below ``z_top`` everywhere and exactly 0 on the plane; ``dirs`` point down.
    The levels are fixed by ``z_top`` alone; those at or above ``highest`` (a bound on the height)
    are skipped, which cannot change any hit, only save time.
    """
    hit_z = np.zeros(len(dirs))
    levels = np.linspace(z_top, 0.0, max(2, int(np.ceil(z_top / MARCH_STEP)) + 1))
    first = 1 if highest is None else max(1, int(np.sum(levels >= highest)))
    idx = np.flatnonzero(active)
    above, below, which = [], [], []
    for k in range(first, len(levels)):
        if idx.size == 0:
            break
        z = levels[k]
        d = dirs[idx]
        t = (z - origin[2]) / d[:, 2]
        inside = z - height(origin[0] + t * d[:, 0], origin[1] + t * d[:, 1]) <= 0.0
        if inside.any():
            which.append(idx[inside])
            above.append(np.full(int(inside.sum()), levels[k - 1]))
            below.append(np.full(int(inside.sum()), z))
            idx = idx[~inside]
    if not which:
        return hit_z
    which_a = np.concatenate(which)
    lo, hi = np.concatenate(below), np.concatenate(above)  # lo: under the surface, hi: over it
    d = dirs[which_a]
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        t = (mid - origin[2]) / d[:, 2]
        inside = mid - height(origin[0] + t * d[:, 0], origin[1] + t * d[:, 1]) <= 0.0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    hit_z[which_a] = lo
    return hit_z


def surface_normals(height: HeightField, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Unit normals (-h_x, -h_y, 1) by central differences."""
    e = NORMAL_DELTA
    hx = (height(x + e, y) - height(x - e, y)) / (2 * e)
    hy = (height(x, y + e) - height(x, y - e)) / (2 * e)
    n = np.stack([-hx, -hy, np.ones_like(x)], axis=1)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def footprint_grid(height: HeightField, bbox: tuple[float, float, float, float]) -> np.ndarray:
    """Heights sampled every :data:`FOOTPRINT_CELL` over ``bbox``, indexed [x, y]."""
    xmin, xmax, ymin, ymax = bbox
    nx = int(np.ceil((xmax - xmin) / FOOTPRINT_CELL)) + 1
    ny = int(np.ceil((ymax - ymin) / FOOTPRINT_CELL)) + 1
    gx, gy = np.meshgrid(
        xmin + FOOTPRINT_CELL * np.arange(nx), ymin + FOOTPRINT_CELL * np.arange(ny), indexing="ij"
    )
    return height(gx.ravel(), gy.ravel()).reshape(nx, ny)


def rays_near_part(
    height: HeightField,
    top_xy: np.ndarray,
    bottom_xy: np.ndarray,
    bbox: tuple[float, float, float, float],
) -> np.ndarray:
    """Rays that may meet the part: those ending on the plane near its footprint.

    The footprint (h > 0) is sampled on a grid of :data:`FOOTPRINT_CELL` inside ``bbox`` and grown
    by the farthest any ray drifts sideways between ``z_top`` and the plane, plus two cells, so
    no ray that passes over the part is left out. The others see only the plane and are solved
    exactly without marching, with the same result marching would give.
    """
    from scipy.ndimage import binary_dilation

    xmin, xmax, ymin, ymax = bbox
    occupied = footprint_grid(height, bbox) > 0.0
    nx, ny = occupied.shape
    drift = float(np.max(np.hypot(*(top_xy - bottom_xy).T)))
    grow = int(np.ceil(drift / FOOTPRINT_CELL)) + 2
    disk = np.hypot(*np.mgrid[-grow : grow + 1, -grow : grow + 1]) <= grow
    near = binary_dilation(np.pad(occupied, grow), structure=disk)[grow:-grow, grow:-grow]
    ix = np.round((bottom_xy[:, 0] - xmin) / FOOTPRINT_CELL).astype(np.int64)
    iy = np.round((bottom_xy[:, 1] - ymin) / FOOTPRINT_CELL).astype(np.int64)
    in_grid = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    active = np.zeros(len(bottom_xy), dtype=bool)
    active[in_grid] = near[ix[in_grid], iy[in_grid]]
    return active


def ray_ends(camera: Camera, z_top: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(origin, world directions, xy where each ray crosses z_top, xy where it meets the plane)."""
    rot = camera.rotation()
    origin = camera.centre()
    dirs = np.einsum("ij,kj->ik", camera.pixel_rays(), rot)  # not `@`: BLAS threads are slower here
    t_top = (z_top - origin[2]) / dirs[:, 2]
    t_bottom = -origin[2] / dirs[:, 2]
    top_xy = origin[:2] + t_top[:, None] * dirs[:, :2]
    bottom_xy = origin[:2] + t_bottom[:, None] * dirs[:, :2]
    return origin, dirs, top_xy, bottom_xy


def rays_near_point(camera: Camera, z_top: float, centre: tuple[float, float], radius: float) -> np.ndarray:
    """(H, W) mask of the rays whose path below ``z_top`` passes within ``radius`` of ``centre`` (xy).

    A ray outside it never samples the height field (normals included) within ``radius``.
    """
    _, _, a, b = ray_ends(camera, z_top)
    ab = b - a
    c = np.asarray(centre, dtype=np.float64)
    s = np.clip(np.einsum("ij,ij->i", c - a, ab) / np.einsum("ij,ij->i", ab, ab), 0.0, 1.0)
    gap = np.hypot(*(a + s[:, None] * ab - c).T)
    return (gap <= radius + 2 * NORMAL_DELTA).reshape(camera.height, camera.width)


def render(
    camera: Camera,
    height: HeightField,
    z_top: float,
    bbox: tuple[float, float, float, float],
    select: np.ndarray | None = None,
) -> Render:
    """Render the height field, which must be exactly 0 outside ``bbox`` (xmin, xmax, ymin, ymax).

    With ``select`` (an (H, W) mask) only those rays are solved; the others are returned as if they
    met the bare plane, for the caller to fill from another render.
    """
    rot = camera.rotation()
    origin, dirs, top_xy, bottom_xy = ray_ends(camera, z_top)
    active = rays_near_part(height, top_xy, bottom_xy, bbox)
    if select is not None:
        active &= select.ravel()
    highest = float(footprint_grid(height, bbox).max()) + HIGHEST_MARGIN
    hit_z = march(height, origin, dirs, z_top, active, highest)
    t = (hit_z - origin[2]) / dirs[:, 2]
    world = origin + t[:, None] * dirs
    normal = np.zeros_like(world)
    normal[:, 2] = 1.0  # the plane, wherever no ray was marched
    normal[active] = surface_normals(height, world[active, 0], world[active, 1])
    to_camera = -dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    projector = origin + rot @ np.array([camera.projector_offset, 0.0, 0.0])
    to_projector = projector - world
    to_projector /= np.linalg.norm(to_projector, axis=1, keepdims=True)
    cos_cam = np.einsum("ij,ij->i", normal, to_camera)
    cos_proj = np.einsum("ij,ij->i", normal, to_projector)
    valid = (cos_cam >= camera.min_cos) & (cos_proj >= camera.min_cos)
    valid[valid & active] &= ~in_shadow(height, world[valid & active], projector, min(highest, z_top))
    shape = (camera.height, camera.width)
    return Render(
        depth=t.reshape(shape),
        valid=valid.reshape(shape),
        world=world.reshape(*shape, 3),
        normal=normal.reshape(*shape, 3),
    )


def in_shadow(height: HeightField, points: np.ndarray, light: np.ndarray, highest: float) -> np.ndarray:
    """Whether the segment from each surface point towards ``light`` passes under the height field.

    The segment is sampled on fixed world-height levels above each point (one :data:`MARCH_STEP`
    apart, up to ``highest``), so a point's shadow depends only on the heights along its own
    segment, which drifts sideways at most :func:`shadow_drift` from the point.
    """
    shadow = np.zeros(len(points), dtype=bool)
    if len(points) == 0:
        return shadow
    direction = light - points
    for k in range(1, int(np.ceil(highest / MARCH_STEP)) + 1):
        z = points[:, 2] + k * MARCH_STEP
        todo = np.flatnonzero(~shadow & (z < highest))
        if todo.size == 0:
            break
        t = (z[todo] - points[todo, 2]) / direction[todo, 2]
        x = points[todo, 0] + t * direction[todo, 0]
        y = points[todo, 1] + t * direction[todo, 1]
        shadow[todo] = height(x, y) > z[todo]
    return shadow


def shadow_drift(camera: Camera, z_top: float, reach: float) -> float:
    """How far sideways a shadow segment from a point within ``reach`` of the origin runs below ``z_top``."""
    rot = camera.rotation()
    projector = camera.centre() + rot @ np.array([camera.projector_offset, 0.0, 0.0])
    sideways = float(np.hypot(*projector[:2])) + reach
    return z_top * sideways / (float(projector[2]) - z_top)


def merge(base: Render, patch: Render, where: np.ndarray) -> Render:
    """``base`` with the pixels in ``where`` taken from ``patch``."""
    return Render(
        depth=np.where(where, patch.depth, base.depth),
        valid=np.where(where, patch.valid, base.valid),
        world=np.where(where[..., None], patch.world, base.world),
        normal=np.where(where[..., None], patch.normal, base.normal),
    )
