"""An organized scan's valid pixels, their points and their pixel coordinates.

The numpy form (:func:`valid_points_numpy`, the reference) walks the H x W x 3 image for the
mask (finite, not all zero), again for ``np.nonzero`` and the gathers, and builds a temporary at
each step: 45 of the 65 ms the runtime spends reading an 800 x 800 scan. The numba kernel makes
one pass for the mask and its count and one to copy the valid points and their (row, column)
out: the same three arrays (tests/test_data_valid_points.py), in a few milliseconds.
"""

from __future__ import annotations

import functools

import numpy as np

from st3d_edge.numba_support import numba_available


def valid_mask_numpy(xyz: np.ndarray) -> np.ndarray:
    """bool[H, W]: finite on all three coordinates and not all three zero."""
    return np.isfinite(xyz).all(axis=2) & (xyz != 0).any(axis=2)


def valid_points_numpy(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bool[H, W] valid mask, float32[N, 3] valid points row by row, int32[N, 2] their pixels),
    the mask by :func:`valid_mask_numpy`."""
    valid = valid_mask_numpy(xyz)
    rows, cols = np.nonzero(valid)
    return valid, xyz[rows, cols], np.stack([rows, cols], axis=1).astype(np.int32)


@functools.cache
def _kernels():
    import numba

    @numba.njit(cache=True)
    def mark(xyz, valid):
        count = 0
        for r in range(xyz.shape[0]):
            for c in range(xyz.shape[1]):
                x, y, z = xyz[r, c, 0], xyz[r, c, 1], xyz[r, c, 2]
                ok = np.isfinite(x) and np.isfinite(y) and np.isfinite(z) and (x != 0 or y != 0 or z != 0)
                valid[r, c] = ok
                count += ok
        return count

    @numba.njit(cache=True)
    def gather(xyz, valid, points, pixels):
        at = 0
        for r in range(xyz.shape[0]):
            for c in range(xyz.shape[1]):
                if valid[r, c]:
                    points[at, 0], points[at, 1], points[at, 2] = xyz[r, c, 0], xyz[r, c, 1], xyz[r, c, 2]
                    pixels[at, 0], pixels[at, 1] = r, c
                    at += 1

    return mark, gather


def valid_points(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`valid_points_numpy`'s arrays, by the numba kernels when numba is installed and the
    image is a C-contiguous float32 H x W x 3 array (what the readers return)."""
    if not (numba_available() and xyz.dtype == np.float32 and xyz.ndim == 3 and xyz.flags.c_contiguous):
        return valid_points_numpy(xyz)
    mark, gather = _kernels()
    valid = np.empty(xyz.shape[:2], dtype=np.bool_)
    count = mark(xyz, valid)
    points = np.empty((count, 3), dtype=np.float32)
    pixels = np.empty((count, 2), dtype=np.int32)
    gather(xyz, valid, points, pixels)
    return valid, points, pixels
