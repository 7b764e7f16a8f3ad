"""Where the top-scoring points of good scans lie: near holes, the border, the background."""

from __future__ import annotations

import numpy as np

from st3d_edge.evaluation import explain
from tests.runtime_fixtures import organized_cloud, toy_scan


def test_shares_of_top_points_by_place_match_a_direct_count():
    xyz = organized_cloud(30, 40, seed=3, bump=False)
    xyz[10:13, 20:23] = 0.0  # a missing-data hole inside the image
    scan = toy_scan(xyz)
    idx = np.arange(len(scan.points))
    rows, cols = scan.pixels[:, 0], scan.pixels[:, 1]
    # the highest scores on the hole's rim: every top point lies within NEAR pixels of it
    near_hole = (np.abs(rows - 11) <= 4) & (np.abs(cols - 21) <= 4)
    scores = np.where(near_hole, 10.0, 1.0) + 1e-3 * np.arange(len(idx)) / len(idx)
    shares = explain.explain_scan(scan, idx, scores, top=20)
    assert shares["top_near_invalid"] == 1.0
    places = explain.point_places(scan, idx)
    for kind in explain.KINDS:
        assert shares[f"all_{kind}"] == places[kind].mean()
    border = np.minimum.reduce([rows, cols, 29 - rows, 39 - cols]) < explain.NEAR
    assert (places["near_border"] == border).all()
    line = explain.explain_line("toy/000", shares)
    assert line.startswith("toy/000: top-50 points near_invalid 100% (all ")
