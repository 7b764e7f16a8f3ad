"""Checks that turn a scan the model cannot judge into an error instead of a wrong verdict.

The bundle records s, the mean point spacing of the training clouds (sampled to n points, the
k - 1 nearest neighbours of each). Three documented rules use it:

1. Coordinate range: every coordinate of a valid pixel must satisfy |x| <= COORDINATE_LIMIT
   spacings (1e6 * s: a kilometre for a model trained at 1 mm spacing). A scan with a pixel
   beyond is rejected whole, naming the worst pixel: one wild pixel (a scanner glitch at
   1e18) or a scan in absurd units would otherwise overflow float32 distances into NaN.
2. Units: the scan's own spacing, measured exactly as s was (on the sampled points and their
   kNN graph), must lie within a factor UNIT_BAND (10) of s either way. Outside the band the
   scan is rejected with the factor, since a scan in millimetres scored by a model trained in
   metres gives confident nonsense. The band is wide on purpose: a scan with fewer valid
   points than n is used whole and so is denser than the training samples (a factor of about
   sqrt(N / n)); millimetres vs metres (1000), centimetres vs metres (100) and inches vs
   millimetres (25.4) all fall outside it.
3. Scores: every score the model returns must be finite; otherwise the scan is rejected
   ("the model produced NaN"), so no NaN ever reaches a map, an image score or a JSON line.
"""

from __future__ import annotations

import numpy as np

from st3d_edge.errors import file_error
from st3d_edge.geometry.scale import knn_distance_sum

COORDINATE_LIMIT = 1e6  # in units of the bundle's s
UNIT_BAND = 10.0
SPACING_ROWS = 4096


def check_coordinates(path: object, points: np.ndarray, pixels: np.ndarray, s: float) -> None:
    limit = COORDINATE_LIMIT * s
    magnitude = np.abs(points).max(axis=1) if len(points) else np.zeros(0, np.float32)
    worst = int(np.argmax(magnitude)) if len(points) else 0
    if len(points) and not magnitude[worst] <= limit:
        row, col = (int(v) for v in pixels[worst])
        count = int((~(magnitude <= limit)).sum())
        raise file_error(
            path,
            f"coordinates out of range for this bundle: {count} pixel(s) beyond |{limit:.3g}| "
            f"(1e6 x its point spacing s = {s:.3g}), e.g. {float(magnitude[worst]):.3g} at "
            f"row {row}, column {col}",
        )


def scan_spacing(points: np.ndarray, knn: np.ndarray, rows: int = SPACING_ROWS) -> float:
    """s of one sampled cloud, estimated on at most ``rows`` evenly spread points (plenty for a ratio)."""
    points, knn = np.asarray(points), np.asarray(knn)
    if len(knn) > rows:
        pick = np.linspace(0, len(knn) - 1, rows).astype(np.int64)
        knn = knn[pick]
        offsets = points[knn[:, 1:]].astype(np.float64) - points[pick, None, :]
        return float(np.sqrt((offsets**2).sum(-1)).mean())
    total, count = knn_distance_sum(points, knn)
    return total / count if count else 0.0


def check_units(path: object, spacing: float, s: float) -> None:
    ratio = spacing / s
    if not 1.0 / UNIT_BAND <= ratio <= UNIT_BAND:
        factor = f"{ratio:.4g} times" if ratio >= 1 else f"1/{1 / ratio:.4g} of" if ratio > 0 else "0 times"
        raise file_error(
            path,
            f"the units look wrong: the scan's point spacing {spacing:.3g} is {factor} the model's "
            f"(s = {s:.3g}; allowed: within a factor {UNIT_BAND:g}); convert the scan to the units the "
            "model was trained in",
        )


def check_scores(path: object, scores: np.ndarray) -> None:
    bad = ~np.isfinite(scores)
    if bad.any():
        raise file_error(path, f"the model produced {int(bad.sum())} non-finite score(s) (NaN or inf)")
