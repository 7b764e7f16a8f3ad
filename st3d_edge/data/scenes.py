"""Teacher pretraining scenes (paper section 4.1): random objects scattered in a cube.

A scene is ``objects`` meshes (10 in the paper), each centred on its bounding box, scaled so the
longest bounding-box side is 1, rotated about the x, then y, then z axis by angles drawn uniformly
from [0, 2 pi), and moved to a position drawn uniformly from [-3, 3]^3. The scene's surface is
sampled uniformly by area with trimesh to ``surface_points`` points; reducing them to n by FPS is
the caller's job.

Objects come from ModelNet10 ``.off`` meshes when a folder is given (every ``*.off`` below it; a
scene draws without repetition while the folder has enough meshes). Without one they are
procedural: one of :data:`FAMILIES` (trimesh primitives) with random proportions, then a random
non-uniform scaling (0.5-1.5 per axis), a bend, a twist and a little vertex noise, so no two are
alike.

trimesh belongs to the ``train`` extra and is imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from st3d_edge.errors import MissingExtraError, file_error

FAMILIES = ("box", "capsule", "cylinder", "cone", "icosphere", "torus", "annulus")
PLACEMENT = 3.0  # positions are uniform in [-PLACEMENT, PLACEMENT]^3


def _trimesh():
    try:
        import trimesh
    except ImportError:
        raise MissingExtraError("trimesh", "train", "needed to build pretraining scenes") from None
    return trimesh


def primitive(family: str, rng: np.random.Generator):
    """An undeformed trimesh primitive of ``family`` with random proportions."""
    creation = _trimesh().creation
    u = rng.uniform
    if family == "box":
        return creation.box(extents=u(0.3, 1.0, 3))
    if family == "capsule":
        return creation.capsule(height=u(0.2, 1.0), radius=u(0.1, 0.4), count=[16, 16])
    if family == "cylinder":
        return creation.cylinder(radius=u(0.1, 0.5), height=u(0.2, 1.0), sections=24)
    if family == "cone":
        return creation.cone(radius=u(0.2, 0.5), height=u(0.3, 1.0), sections=24)
    if family == "icosphere":
        return creation.icosphere(subdivisions=2, radius=u(0.3, 0.5))
    if family == "torus":
        major = u(0.3, 0.5)
        return creation.torus(major_radius=major, minor_radius=major * u(0.15, 0.5))
    if family == "annulus":
        outer = u(0.3, 0.5)
        return creation.annulus(r_min=outer * u(0.4, 0.8), r_max=outer, height=u(0.05, 0.4), sections=24)
    raise ValueError(f"unknown shape family {family!r}; choose from {', '.join(FAMILIES)}")


def deform(mesh, rng: np.random.Generator):
    """Non-uniform scaling, a bend about y, a twist about z and vertex noise, all random."""
    trimesh = _trimesh()
    size = float(np.max(mesh.extents))
    vertices, faces = trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=size / 8)
    v = vertices * rng.uniform(0.5, 1.5, 3)
    v[:, 2] += rng.uniform(-0.6, 0.6) * v[:, 0] ** 2 / size
    angle = rng.uniform(-1.0, 1.0) * v[:, 2] / size
    c, s = np.cos(angle), np.sin(angle)
    v[:, 0], v[:, 1] = c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1]
    v += rng.normal(0.0, 0.005 * size, v.shape)
    return trimesh.Trimesh(vertices=v, faces=faces, process=False)


def procedural_object(rng: np.random.Generator, family: str | None = None):
    """A randomly deformed primitive; ``family`` is drawn from :data:`FAMILIES` unless given."""
    family = FAMILIES[int(rng.integers(len(FAMILIES)))] if family is None else family
    return deform(primitive(family, rng), rng)


def modelnet_files(folder: str | Path) -> list[Path]:
    """Every ``.off`` mesh below ``folder``, sorted, or a one-line error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise file_error(folder, "ModelNet folder not found")
    files = sorted(folder.rglob("*.off"))
    if not files:
        raise file_error(folder, "no .off meshes found in this folder or below it")
    return files


def load_off(path: str | Path):
    """A mesh from an ``.off`` file (ModelNet's 'OFF<counts>' first lines included)."""
    trimesh = _trimesh()
    path = Path(path)
    try:
        mesh = trimesh.load(path, file_type="off", force="mesh")
    except Exception as exc:  # trimesh raises many types for malformed files
        raise file_error(
            path, f"not a readable OFF mesh ({type(exc).__name__}: {exc})".splitlines()[0]
        ) from None
    if len(mesh.faces) == 0 or not mesh.area > 0:
        raise file_error(path, "mesh has no surface (no faces or zero area)")
    return mesh


def rotation_xyz(angles: np.ndarray) -> np.ndarray:
    """Rotation by ``angles[0]`` about x, then ``angles[1]`` about y, then ``angles[2]`` about z."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def place(mesh, rng: np.random.Generator):
    """A copy of ``mesh`` centred, longest side 1, randomly rotated and moved (paper 4.1)."""
    lo, hi = mesh.bounds
    v = (mesh.vertices - (lo + hi) / 2) / float(np.max(hi - lo))
    v = v @ rotation_xyz(rng.uniform(0.0, 2 * np.pi, 3)).T
    v += rng.uniform(-PLACEMENT, PLACEMENT, 3)
    return _trimesh().Trimesh(vertices=v, faces=mesh.faces, process=False)


def pretraining_scene(
    rng: np.random.Generator,
    surface_points: int,
    objects: int = 10,
    modelnet_dir: str | Path | None = None,
) -> np.ndarray:
    """(surface_points, 3) float32 points on the surfaces of one random scene."""
    trimesh = _trimesh()
    if modelnet_dir is not None:
        files = modelnet_files(modelnet_dir)
        picks = rng.choice(len(files), objects, replace=len(files) < objects)
        meshes = [load_off(files[int(i)]) for i in picks]
    else:
        meshes = [procedural_object(rng) for _ in range(objects)]
    scene = trimesh.util.concatenate([place(mesh, rng) for mesh in meshes])
    points, _ = trimesh.sample.sample_surface(scene, surface_points, seed=int(rng.integers(2**63)))
    return np.asarray(points, dtype=np.float32)
