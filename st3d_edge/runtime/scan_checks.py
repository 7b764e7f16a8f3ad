"""Checks that turn a scan the model cannot judge into an error instead of a wrong verdict.

The bundle records s, the mean point spacing of the training clouds (sampled to n points, the
k - 1 nearest neighbours of each). The documented rules:

1. Coordinate range: every coordinate of a valid pixel must satisfy |x| <= COORDINATE_LIMIT
   spacings (1e6 * s: a kilometre for a model trained at 1 mm spacing). A scan with a pixel
   beyond is rejected whole, naming the worst pixel: one wild pixel (a scanner glitch at
   1e18) or a scan in absurd units would otherwise overflow float32 distances into NaN.
2. Units: the scan's own spacing must lie within a factor 10 of s either way; that check, with
   its unit hints, lives in :mod:`st3d_edge.runtime.spacing`.
3. Scores: every score the model returns must be finite; otherwise the scan is rejected
   ("the model produced NaN"), so no NaN ever reaches a map, an image score or a JSON line.
"""

from __future__ import annotations

import numpy as np

from st3d_edge.errors import file_error

COORDINATE_LIMIT = 1e6  # in units of the bundle's s


def check_coordinates(path: object, points: np.ndarray, pixels: np.ndarray | None, s: float) -> None:
    limit = COORDINATE_LIMIT * s
    # one whole-array maximum decides (a NaN fails it too); the per-point magnitudes, a slow
    # reduction over rows of three (30 ms on an 800 x 800 scan), only for a scan that fails
    if not len(points) or np.abs(points).max() <= limit:
        return
    magnitude = np.abs(points).max(axis=1)
    worst = int(np.argmax(magnitude))  # a NaN row, if any, else the largest
    count = int((~(magnitude <= limit)).sum())
    if pixels is None:  # an unorganized cloud: name the point
        where, unit = f"point {worst}", "point(s)"
    else:
        row, col = (int(v) for v in pixels[worst])
        where, unit = f"row {row}, column {col}", "pixel(s)"
    raise file_error(
        path,
        f"coordinates out of range for this bundle: {count} {unit} beyond |{limit:.3g}| "
        f"(1e6 x its point spacing s = {s:.3g}), e.g. {float(magnitude[worst]):.3g} at {where}",
    )


def check_scores(path: object, scores: np.ndarray) -> None:
    bad = ~np.isfinite(scores)
    if bad.any():
        raise file_error(path, f"the model produced {int(bad.sum())} non-finite score(s) (NaN or inf)")
