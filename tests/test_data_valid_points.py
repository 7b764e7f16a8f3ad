"""The one-pass valid points of an organized scan against the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.data.valid_points import valid_points, valid_points_numpy


def _image(seed: int, shape=(37, 53)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xyz = rng.normal(0, 1, (*shape, 3)).astype(np.float32)
    pick = rng.random(shape)
    xyz[pick < 0.2] = 0.0  # background
    xyz[(pick >= 0.2) & (pick < 0.25)] = -0.0
    for value in (np.nan, np.inf, -np.inf, 0.0):  # one bad or zero coordinate somewhere
        rows, cols = np.nonzero(rng.random(shape) < 0.05)
        xyz[rows, cols, rng.integers(0, 3, len(rows))] = value
    return xyz


@pytest.mark.parametrize("seed", range(3))
def test_the_same_mask_points_and_pixels_as_the_reference(seed):
    xyz = _image(seed)
    fast, slow = valid_points(xyz), valid_points_numpy(xyz)
    for a, b in zip(fast, slow, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert 0 < len(fast[1]) < xyz.shape[0] * xyz.shape[1]


def test_other_layouts_take_the_reference_path_with_the_same_result():
    xyz = _image(7)
    transposed_view = np.ascontiguousarray(xyz.transpose(1, 0, 2)).transpose(1, 0, 2)
    assert not transposed_view.flags.c_contiguous
    for a, b in zip(valid_points(transposed_view), valid_points_numpy(xyz), strict=True):
        assert np.array_equal(a, b)
    wide = xyz.astype(np.float64)
    for a, b in zip(valid_points(wide), valid_points_numpy(wide), strict=True):
        assert np.array_equal(a, b)


def test_no_valid_pixel():
    valid, points, pixels = valid_points(np.zeros((4, 5, 3), np.float32))
    assert not valid.any() and points.shape == (0, 3) and pixels.shape == (0, 2)
