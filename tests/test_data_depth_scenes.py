"""Pretraining scenes seen by the depth camera: generic solids on the table, one view."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.data import depth_scenes
from tests.helpers import EXACT, assert_close


def test_a_scene_is_a_single_noisy_depth_view_with_holes():
    points = depth_scenes.depth_scene(np.random.default_rng(0), size=(64, 64))
    assert points.dtype == np.float32 and points.ndim == 2 and points.shape[1] == 3
    assert 0.8 * 64 * 64 < len(points) < 64 * 64, "most pixels valid, some lost to grazing angles and shadows"
    assert np.all(points[:, 2] > 0.3) and np.all(points[:, 2] < 0.45), "camera frame, 0.4 m to the table"
    raised = points[:, 2] < np.percentile(points[:, 2], 99) - 0.003
    assert raised.sum() > 20, "solids stand out of the table"


def test_scenes_are_deterministic_per_seed_and_differ_between_seeds():
    a = depth_scenes.depth_scene(np.random.default_rng(1), size=(48, 48))
    b = depth_scenes.depth_scene(np.random.default_rng(1), size=(48, 48))
    c = depth_scenes.depth_scene(np.random.default_rng(2), size=(48, 48))
    assert_close(a, b, **EXACT, what="same seed")
    assert a.shape != c.shape or not np.array_equal(a, c)


@pytest.mark.parametrize("kind", depth_scenes.SOLIDS)
def test_every_solid_is_a_height_field_that_is_zero_off_its_footprint(kind):
    field, radius, top = depth_scenes._solid(kind, np.random.default_rng(3))
    u, v = np.meshgrid(np.linspace(-2 * radius, 2 * radius, 80), np.linspace(-2 * radius, 2 * radius, 80))
    h = field(u.ravel(), v.ravel())
    assert h.max() > 0 and h.max() <= top + 1e-12 and h.min() >= 0
    assert not h[np.hypot(u.ravel(), v.ravel()) > radius + 1e-9].any()
