"""Teacher pretraining scenes seen the way scans are: generic solids on a table, one depth view.

The paper pretrains on full surface samples of ModelNet objects, while every cloud the teacher
later describes is a single-view depth scan: a table plane, steep walls seen at grazing angles,
projector shadows, sensor noise. These scenes close that gap: a few generic solids (boxes,
lying cylinders, domes, cones, ridges, rings, bored plates; none of them a synthetic
category's part) at random positions and sizes, rendered by the same virtual structured-light
camera as :mod:`st3d_edge.data.synthetic` with the same noise and dropouts.
"""

from __future__ import annotations

import numpy as np

from st3d_edge.data.camera import Camera, render

SOLIDS = ("box", "cylinder", "dome", "cone", "ridge", "ring", "plate")
SPREAD = 0.026  # metres: solids are centred within this of the optical axis's foot
IMAGE = (256, 256)


def _solid(kind: str, rng: np.random.Generator):
    """(height field in the solid's frame, footprint radius, top) for one random solid."""
    u = rng.uniform
    tall = u(0.003, 0.016)
    if kind == "box":
        a, b = u(0.004, 0.015, 2)
        return (lambda x, y: np.where((np.abs(x) < a) & (np.abs(y) < b), tall, 0.0)), np.hypot(a, b), tall
    if kind == "cylinder":  # lying on its side along x
        r, half = u(0.003, 0.008), u(0.006, 0.02)
        return (
            lambda x, y: np.where(
                np.abs(x) < half, np.where(np.abs(y) < r, r + np.sqrt(np.maximum(r * r - y * y, 0)), 0.0), 0.0
            ),
            np.hypot(half, r),
            2 * r,
        )
    if kind == "dome":
        r = u(0.005, 0.014)
        squash = tall / r
        return (lambda x, y: squash * np.sqrt(np.maximum(r * r - x * x - y * y, 0.0))), r, tall
    if kind == "cone":
        r = u(0.005, 0.012)
        return (lambda x, y: tall * np.maximum(1.0 - np.hypot(x, y) / r, 0.0)), r, tall
    if kind == "ridge":  # a wedge with a sharp crest along x
        half, w = u(0.006, 0.02), u(0.003, 0.008)
        return (
            lambda x, y: np.where(np.abs(x) < half, tall * np.maximum(1.0 - np.abs(y) / w, 0.0), 0.0),
            np.hypot(half, w),
            tall,
        )
    if kind == "ring":
        outer = u(0.007, 0.014)
        inner = outer * u(0.4, 0.75)
        return (
            (lambda x, y: np.where((np.hypot(x, y) < outer) & (np.hypot(x, y) > inner), tall, 0.0)),
            outer,
            tall,
        )
    if kind == "plate":  # a slab with a round bore
        a, b = u(0.008, 0.016, 2)
        bore = min(a, b) * u(0.2, 0.5)
        thick = u(0.002, 0.006)
        return (
            lambda x, y: np.where((np.abs(x) < a) & (np.abs(y) < b) & (np.hypot(x, y) > bore), thick, 0.0),
            np.hypot(a, b),
            thick,
        )
    raise ValueError(f"unknown solid {kind!r}; choose from {', '.join(SOLIDS)}")


def depth_scene(rng: np.random.Generator, solids: int = 5, size: tuple[int, int] = IMAGE) -> np.ndarray:
    """float32[m, 3] valid camera-frame points of one random scene (table included), in metres."""
    from st3d_edge.data.synthetic import add_sensor_noise

    parts = []
    for _ in range(solids):
        field, radius, top = _solid(SOLIDS[int(rng.integers(len(SOLIDS)))], rng)
        cx, cy = rng.uniform(-SPREAD, SPREAD, 2)
        yaw = rng.uniform(0, 2 * np.pi)
        parts.append((field, float(radius), float(top), cx, cy, np.cos(yaw), np.sin(yaw)))

    def height(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.zeros_like(x)
        for field, radius, _, cx, cy, c, s in parts:
            near = np.hypot(x - cx, y - cy) < radius + 1e-4
            if near.any():
                u = c * (x[near] - cx) + s * (y[near] - cy)
                v = -s * (x[near] - cx) + c * (y[near] - cy)
                out[near] = np.maximum(out[near], field(u, v))
        return out

    camera = Camera(*size)
    reach = SPREAD + max(p[1] for p in parts)
    z_top = max(p[2] for p in parts) + 0.001
    clean = render(camera, height, z_top, (-reach, reach, -reach, reach))
    xyz = add_sensor_noise(clean, camera, rng).reshape(-1, 3)
    return np.ascontiguousarray(xyz[np.any(xyz != 0.0, axis=1)])
