"""Defects: local edits of a part's height field, in the part's own frame (metres).

Sizes are chosen so that every defect spans several pixels even in a 64 px image (which covers
0.08 m, so 1.25 mm per pixel): these are what the tests and the demo must find.

- dent: a smooth depression, radius 5-7 mm, 2-3 mm deep; it never digs into the table.
- contamination: a lump of foreign material on the surface, 3-4.5 mm radius, 2-3.5 mm high.
- crack: a jagged V-groove, three segments 15-22 mm long in all, 2.2-3 mm wide, 2-4 mm deep.
- hole: a round through-hole, radius 3.5-5 mm, down to the table.
- cut: a straight flat-bottomed slot, 12-20 mm long, 2.5-3.5 mm wide, 4-6 mm deep.
- chip: material broken off an edge: a rough scoop, radius 3-5 mm, 2-4 mm deep, centred where the
  part's surface drops steeply (a wall's top edge, a rounded flank), so it opens sideways.

Every defect but the chip is centred on the upper part of the surface (where the part is at least
60 % of its highest point), so it lies on the part rather than on the table. Outside its support the edit
returns the height unchanged, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from st3d_edge.data.shapes import Part

Edit = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

REACH = 0.012  # no defect changes the part farther than this from its footprint
HEIGHT_ADDED = 0.0035  # the most any defect raises the surface


@dataclass(frozen=True)
class Defect:
    kind: str
    centre: tuple[float, float]
    reach: float  # the edit changes nothing farther than this from the centre
    edit: Edit  # (u, v, h) -> edited h, all in the part frame


def _height_grid(part: Part, grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, h): a grid x grid lattice over the part's footprint and its heights."""
    axis = np.linspace(-part.radius, part.radius, grid)
    u, v = np.meshgrid(axis, axis, indexing="ij")
    return u, v, part.height(u.ravel(), v.ravel()).reshape(grid, grid)


def _surface_point(rng: np.random.Generator, part: Part, grid: int = 96) -> tuple[float, float]:
    """A random point on the upper part of the surface (at least 60 % of the highest point)."""
    u, v, h = _height_grid(part, grid)
    candidates = np.flatnonzero(h.ravel() >= 0.6 * h.max())
    i = int(rng.choice(candidates))
    return float(u.ravel()[i]), float(v.ravel()[i])


def _edge_point(rng: np.random.Generator, part: Part, grid: int = 96) -> tuple[float, float]:
    """A random point on an upper edge: at least 40 % of the highest point, with a drop to a grid
    neighbour at least as large as the grid step (steeper than 45 degrees); the steepest such
    tenth of the surface if the part has no edge that sharp."""
    u, v, h = _height_grid(part, grid)
    padded = np.pad(h, 1)  # zero beyond the footprint: the table
    lowest = np.minimum.reduce([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
    drop = (h - lowest).ravel()
    high = np.flatnonzero(h.ravel() >= 0.4 * h.max())
    candidates = high[drop[high] >= u[1, 0] - u[0, 0]]
    if candidates.size == 0:
        candidates = high[drop[high] >= np.quantile(drop[high], 0.9)]
    i = int(rng.choice(candidates))
    return float(u.ravel()[i]), float(v.ravel()[i])


def _dent(rng, part, cu, cv) -> tuple[float, Edit]:
    radius = rng.uniform(0.005, 0.007)
    depth = rng.uniform(0.002, 0.003)

    def edit(u, v, h):
        r2 = ((u - cu) ** 2 + (v - cv) ** 2) / radius**2
        inside = (r2 < 1.0) & (h > 0.0)
        return np.where(inside, np.maximum(h - depth * (1.0 - r2) ** 2, 0.0), h)

    return radius, edit


def _contamination(rng, part, cu, cv) -> tuple[float, Edit]:
    lobes = int(rng.integers(2, 4))
    offsets = rng.uniform(-0.0015, 0.0015, (lobes, 2))
    radii = rng.uniform(0.003, 0.0045, lobes)
    heights = rng.uniform(0.002, HEIGHT_ADDED, lobes)

    def edit(u, v, h):
        lump = np.zeros_like(h)
        for (du, dv), r, top in zip(offsets, radii, heights, strict=True):
            r2 = ((u - cu - du) ** 2 + (v - cv - dv) ** 2) / r**2
            lump = np.maximum(lump, np.where(r2 < 1.0, top * np.sqrt(np.maximum(1.0 - r2, 0.0)), 0.0))
        return np.where(lump > 0.0, h + lump, h)

    return float(np.max(np.hypot(*offsets.T) + radii)), edit


def _segment_distance(u, v, a, b):
    ab = b - a
    t = np.clip(((u - a[0]) * ab[0] + (v - a[1]) * ab[1]) / (ab @ ab), 0.0, 1.0)
    return np.hypot(u - a[0] - t * ab[0], v - a[1] - t * ab[1])


def _crack(rng, part, cu, cv) -> tuple[float, Edit]:
    length = rng.uniform(0.015, 0.022)
    width = rng.uniform(0.0022, 0.003)
    depth = rng.uniform(0.002, 0.004)
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.uniform(-0.6, 0.6, 3))
    steps = (length / 3) * np.stack([np.cos(heading), np.sin(heading)], axis=1)
    points = np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)])
    points += np.array([cu, cv]) - points.mean(axis=0)

    def edit(u, v, h):
        d = np.full_like(h, np.inf)
        for a, b in zip(points[:-1], points[1:], strict=True):
            d = np.minimum(d, _segment_distance(u, v, a, b))
        inside = (d < width / 2) & (h > 0.0)
        return np.where(inside, np.maximum(h - depth * (1.0 - d / (width / 2)), 0.0), h)

    return float(np.max(np.hypot(points[:, 0] - cu, points[:, 1] - cv))) + width / 2, edit


def _hole(rng, part, cu, cv) -> tuple[float, Edit]:
    radius = rng.uniform(0.0035, 0.005)

    def edit(u, v, h):
        return np.where((u - cu) ** 2 + (v - cv) ** 2 < radius**2, 0.0, h)

    return radius, edit


def _cut(rng, part, cu, cv) -> tuple[float, Edit]:
    length = rng.uniform(0.012, 0.020)
    width = rng.uniform(0.0025, 0.0035)
    angle = rng.uniform(0, np.pi)
    c, s = np.cos(angle), np.sin(angle)
    floor = max(float(part.height(np.array([cu]), np.array([cv]))[0]) - rng.uniform(0.004, 0.006), 0.0)

    def edit(u, v, h):
        along = (u - cu) * c + (v - cv) * s
        across = -(u - cu) * s + (v - cv) * c
        inside = (np.abs(along) < length / 2) & (np.abs(across) < width / 2) & (h > floor)
        return np.where(inside, floor, h)

    return float(np.hypot(length / 2, width / 2)), edit


def _chip(rng, part, cu, cv) -> tuple[float, Edit]:
    radius = rng.uniform(0.003, 0.005)
    depth = rng.uniform(0.002, 0.004)
    top = float(part.height(np.array([cu]), np.array([cv]))[0])
    # A fracture is not round: the scoop's radius wobbles with the direction (three harmonics).
    harmonics = np.arange(2, 5)
    amplitude = rng.uniform(0.03, 0.08, harmonics.size)
    phase = rng.uniform(0, 2 * np.pi, harmonics.size)

    def edit(u, v, h):
        angle = np.arctan2(v - cv, u - cu)
        wobble = 1.0 + np.sum(amplitude * np.sin(harmonics * angle[..., None] + phase), axis=-1)
        r2 = ((u - cu) ** 2 + (v - cv) ** 2) / (radius * wobble) ** 2
        floor = np.maximum(top - depth * np.sqrt(np.maximum(1.0 - r2, 0.0)), 0.0)
        return np.where((r2 < 1.0) & (h > floor), floor, h)

    return radius * (1.0 + float(amplitude.sum())), edit


# Where each kind is centred, and the edit it makes there.
_KINDS = {
    "dent": (_surface_point, _dent),
    "contamination": (_surface_point, _contamination),
    "crack": (_surface_point, _crack),
    "hole": (_surface_point, _hole),
    "cut": (_surface_point, _cut),
    "chip": (_edge_point, _chip),
}


def draw_defect(kind: str, rng: np.random.Generator, part: Part) -> Defect:
    """A random defect of ``kind`` on ``part``."""
    centre, make = _KINDS[kind]
    cu, cv = centre(rng, part)
    reach, edit = make(rng, part, cu, cv)
    return Defect(kind, (cu, cv), reach, edit)
