"""Refuse a scan whose point spacing says its units differ from the model's.

The bundle records s, the mean distance from each sampled training point to its k - 1 nearest
neighbours (paper eq. 4, in metres). The runtime samples a scan to the same n points and builds
the same kNN graph, so the scan's own spacing, measured the same way, is close to s for a part
like the training parts: its ratio to s moves with the part's extent (about the square root of
its area ratio for a surface), not by the factor 1000 of a unit mix-up (millimetres read as
metres). Decisions: the spacing is measured on the first :data:`CHECK_ROWS` sampled points
(their neighbours anywhere in the sample), and a ratio outside :data:`SPACING_BAND` (0.1 .. 10,
a part 100 times the training parts' area either way) is refused with the likely unit factor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from st3d_edge.errors import file_error

SPACING_BAND = (0.1, 10.0)
CHECK_ROWS = 2048
_UNIT_STEPS = {1e3: "millimetres read as metres?", 1e6: "micrometres read as metres?"}


def scan_spacing(sampled: np.ndarray, knn_rows: np.ndarray) -> float:
    """Mean distance from each listed point (``knn_rows``: its kNN rows, self first) to its neighbours."""
    rows = np.asarray(knn_rows)
    points = np.asarray(sampled, dtype=np.float64)
    centres = points[: len(rows)][:, None, :]
    return float(np.linalg.norm(points[rows[:, 1:]] - centres, axis=2).mean())


def check_spacing(
    path: str | Path, spacing: float, s: float, band: tuple[float, float] = SPACING_BAND
) -> None:
    """One line naming the scan when ``spacing / s`` lies outside ``band``."""
    if not (np.isfinite(spacing) and spacing > 0 and s > 0):
        return
    ratio = spacing / s
    if band[0] <= ratio <= band[1]:
        return
    step = min(_UNIT_STEPS, key=lambda factor: abs(np.log(max(ratio, 1 / ratio) / factor)))
    hint = _UNIT_STEPS[step] if ratio > 1 else "metres read as " + _UNIT_STEPS[step].split()[0] + "?"
    raise file_error(
        path,
        f"point spacing {spacing:.3g} is {ratio:.3g} times the model's ({s:.3g}): the units look wrong "
        f"({hint}); say what the file holds with --units m|mm|um",
    )
