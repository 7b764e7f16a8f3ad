"""Pretraining scenes (paper 4.1): unit-size objects, rotated, placed in [-3, 3]^3, surface-sampled."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.data import scenes
from st3d_edge.errors import St3dError
from tests.helpers import EXACT, FLOAT64_SOLVER, assert_close

CUBE_OFF = """OFF
8 6 0
0 0 0
2 0 0
2 1 0
0 1 0
0 0 0.5
2 0 0.5
2 1 0.5
0 1 0.5
4 0 3 2 1
4 4 5 6 7
4 0 1 5 4
4 1 2 6 5
4 2 3 7 6
4 3 0 4 7
"""
# ModelNet10 has files whose counts share the first line with the keyword.
TETRA_OFF_GLUED = "OFF4 4 0\n0 0 0\n3 0 0\n0 3 0\n0 0 3\n3 0 2 1\n3 0 1 3\n3 0 3 2\n3 1 2 3\n"


def _modelnet(tmp_path):
    (tmp_path / "chair" / "train").mkdir(parents=True)
    (tmp_path / "table").mkdir()
    (tmp_path / "chair" / "train" / "chair_0001.off").write_text(CUBE_OFF)
    (tmp_path / "table" / "table_0001.off").write_text(TETRA_OFF_GLUED)
    (tmp_path / "table" / "notes.txt").write_text("ignored")
    return tmp_path


def test_modelnet_scene_objects_are_unit_size_and_inside_the_cube(tmp_path):
    folder = _modelnet(tmp_path)
    assert [p.name for p in scenes.modelnet_files(folder)] == ["chair_0001.off", "table_0001.off"]
    points = scenes.pretraining_scene(np.random.default_rng(0), 3000, objects=1, modelnet_dir=folder)
    assert points.shape == (3000, 3) and points.dtype == np.float32
    extent = points.max(0) - points.min(0)
    # one object, longest side 1 after scaling, any rotation: its extent is between 1/sqrt(3)..sqrt(3)
    assert extent.max() <= np.sqrt(3) + 1e-6 and np.linalg.norm(extent) >= 1.0 - 1e-3
    assert np.abs(points).max() <= 3.0 + np.sqrt(3) / 2 + 1e-6


def test_place_matches_the_paper_recipe_step_by_step():
    import trimesh

    mesh = trimesh.creation.box(extents=[2.0, 1.0, 0.5])
    mesh.apply_translation([5.0, -1.0, 2.0])
    rng = np.random.default_rng(1)
    placed = scenes.place(mesh, np.random.default_rng(1))
    angles = rng.uniform(0.0, 2 * np.pi, 3)
    shift = rng.uniform(-3, 3, 3)
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    centred = (mesh.vertices - mesh.bounds.mean(axis=0)) / 2.0
    expected = np.array([rz @ ry @ rx @ v for v in centred]) + shift
    assert_close(placed.vertices, expected, **FLOAT64_SOLVER, what="placed vertices")
    assert_close(
        np.linalg.norm(placed.vertices - shift, axis=1).max(),
        np.sqrt(1 + 0.25 + 0.0625) / 2,
        **FLOAT64_SOLVER,
        what="unit longest side",
    )


@pytest.mark.parametrize("family", scenes.FAMILIES)
def test_every_procedural_family_gives_a_deformed_surface(family):
    plain = scenes.primitive(family, np.random.default_rng(3))
    shaped = scenes.deform(scenes.primitive(family, np.random.default_rng(3)), np.random.default_rng(7))
    assert shaped.area > 0 and len(shaped.faces) >= len(plain.faces)
    proportions = lambda m: m.extents / m.extents.max()  # noqa: E731
    assert np.abs(proportions(shaped) - proportions(plain)).max() > 0.02, "not just a uniform rescale"


def test_more_objects_than_meshes_reuses_meshes(tmp_path):
    folder = _modelnet(tmp_path)
    points = scenes.pretraining_scene(np.random.default_rng(8), 2000, objects=5, modelnet_dir=folder)
    assert points.shape == (2000, 3) and np.isfinite(points).all()


def test_procedural_scene_is_deterministic_and_spread_out():
    a = scenes.pretraining_scene(np.random.default_rng(4), 4000)
    b = scenes.pretraining_scene(np.random.default_rng(4), 4000)
    c = scenes.pretraining_scene(np.random.default_rng(5), 4000)
    assert_close(a, b, **EXACT, what="same generator state, same scene")
    assert not np.array_equal(a, c)
    assert a.shape == (4000, 3) and np.isfinite(a).all()
    assert np.abs(a).max() <= 3.0 + np.sqrt(3) / 2 + 1e-5
    assert (a.max(0) - a.min(0)).min() > 2.0, "ten objects scattered over the cube"


def test_missing_or_empty_modelnet_folders_and_bad_meshes(tmp_path):
    rng = np.random.default_rng(6)
    with pytest.raises(St3dError, match="ModelNet folder not found"):
        scenes.pretraining_scene(rng, 100, modelnet_dir=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(St3dError, match=r"no \.off meshes found"):
        scenes.pretraining_scene(rng, 100, modelnet_dir=tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.off").write_text("this is not a mesh")
    with pytest.raises(St3dError, match="x.off: not a readable OFF mesh"):
        scenes.pretraining_scene(rng, 100, modelnet_dir=tmp_path / "bad")
