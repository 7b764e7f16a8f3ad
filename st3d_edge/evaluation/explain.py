"""Where the highest scores of good scans lie: the diagnostic behind ``evaluate --explain``.

On a good scan every high score is a false alarm, and they are rarely random: kNN
neighbourhoods that are one-sided or stretched (beside missing-data holes, at the image
border) describe differently from scan to scan. For each good test scan this reports, for
its ``TOP`` highest-scoring sampled points against all sampled points, the share that lies

* ``near_invalid``: within ``NEAR`` pixels of an invalid (missing-data) pixel inside the image,
* ``near_border``: within ``NEAR`` pixels of the image border,
* ``background``: on the background plane (RANSAC, :mod:`st3d_edge.data.plane`; the rest is
  the object),

so the failure mode shows in one line per scan. A share for the top points well above the
share for all points says where the false alarms come from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TOP = 50
NEAR = 4  # pixels
KINDS = ("near_invalid", "near_border", "background")


def point_places(scan, idx: np.ndarray) -> dict[str, np.ndarray]:
    """bool[m] per kind for the sampled points ``idx`` of ``scan`` (see the module docstring)."""
    from scipy.ndimage import distance_transform_edt

    from st3d_edge.data.plane import remove_background_plane

    valid = np.asarray(scan.valid, dtype=bool)
    height, width = valid.shape
    # distance to the nearest invalid pixel; the border does not count as invalid here
    to_invalid = distance_transform_edt(np.pad(valid, 1, constant_values=True))[1:-1, 1:-1]
    rows, cols = scan.pixels[idx, 0], scan.pixels[idx, 1]
    to_border = np.minimum.reduce([rows, cols, height - 1 - rows, width - 1 - cols])
    background = ~remove_background_plane(scan.points)[idx]
    return {
        "near_invalid": to_invalid[rows, cols] <= NEAR,
        "near_border": to_border < NEAR,
        "background": background,
    }


def explain_scan(scan, idx: np.ndarray, scores: np.ndarray, top: int = TOP) -> dict[str, float]:
    """Shares of the top-scoring and of all sampled points per kind, for one scan."""
    places = point_places(scan, idx)
    order = np.argsort(np.asarray(scores), kind="stable")[::-1][: min(top, len(scores))]
    out = {}
    for kind, where in places.items():
        out[f"top_{kind}"] = float(where[order].mean())
        out[f"all_{kind}"] = float(where.mean())
    return out


def explain_line(name: str, shares: dict[str, float]) -> str:
    parts = [f"{kind} {shares[f'top_{kind}']:.0%} (all {shares[f'all_{kind}']:.0%})" for kind in KINDS]
    return f"{name}: top-{TOP} points " + ", ".join(parts)


def explain_scans(
    data_root: str | Path, category: str, run_dir: str | Path, scoring: str | None = None
) -> list[tuple[str, dict[str, float]]]:
    """(scan name, shares) for every good test scan of a category, scored by a trained run."""
    from st3d_edge.data.mvtec import good_scan_paths, read_scan
    from st3d_edge.evaluation.runner import ModelPointScorer

    scorer = ModelPointScorer(run_dir, scoring=scoring)
    rows = []
    for path in good_scan_paths(data_root, category, "test"):
        scan = read_scan(path)
        idx, _, scores = scorer(scan.points)
        rows.append((f"{category}/test/good/{scan.name}", explain_scan(scan, idx, scores)))
    return rows


def explain_category(
    data_root: str | Path, category: str, run_dir: str | Path, scoring: str | None = None
) -> dict[str, float]:
    """The shares averaged over the good test scans of a category."""
    rows = [shares for _, shares in explain_scans(data_root, category, run_dir, scoring)]
    return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]} if rows else {}


def receptive_field_fraction(
    data_root: str | Path,
    category: str,
    n: int,
    k: int,
    hops: int,
    sampler: str = "fps",
    scans: int = 3,
    points: int = 20,
    seed: int = 0,
) -> float:
    """Median size of the ``hops``-hop receptive field as a fraction of the sampled cloud."""
    from st3d_edge.data.mvtec import good_scan_paths, read_scan
    from st3d_edge.geometry.knn import knn_indices
    from st3d_edge.geometry.receptive_field import receptive_field
    from st3d_edge.geometry.sampling import sample_indices

    rng = np.random.default_rng(seed)
    fractions = []
    for path in good_scan_paths(data_root, category, "test")[:scans]:
        cloud = read_scan(path).points
        sampled = cloud[sample_indices(cloud, n, sampler)]
        knn = knn_indices(sampled, min(k, len(sampled)))
        for i in rng.choice(len(sampled), min(points, len(sampled)), replace=False):
            fractions.append(len(receptive_field(knn, int(i), hops)) / len(sampled))
    return float(np.median(fractions))
