"""The host side of tiled FPS: ``st3d_edge.geometry.tiles.tile_plan`` as a kernel segment table.

The plan is computed on the host with the CPU sampler's own function, so the GPU tiles, quotas
and first points are those of ``st3d_edge.geometry.tiles.fps_tiled`` by construction; only the
per-tile sampling runs on the device (one block per tile, one launch).
"""

from __future__ import annotations

import numpy as np


def segments_for(points: np.ndarray, n: int, tile_points: int | None = None):
    """``(order int64[N], segments int64[T, 5], extra)``; rows ``(start, count, quota, out_at, first)``.

    ``start``/``count`` locate the tile in ``order``; its samples go to ``out[out_at:out_at+quota]``
    (tiles in plan order); ``first`` is the plan's start point as a position inside the tile.
    ``extra`` samples are left to the global second pass, written after the tiles' samples.
    """
    from st3d_edge.geometry.tiles import TILE_POINTS, tile_plan

    plan = tile_plan(points, n, tile_points=TILE_POINTS if tile_points is None else tile_points)
    starts = plan.offsets[:-1]
    counts = np.diff(plan.offsets)
    position = np.empty(len(plan.order), dtype=np.int64)
    position[plan.order] = np.arange(len(plan.order))
    first = position[plan.starts] - starts
    out_at = np.concatenate([[0], np.cumsum(plan.quota)[:-1]]).astype(np.int64)
    segments = np.stack([starts, counts, plan.quota, out_at, first], axis=1).astype(np.int64)
    return plan.order.astype(np.int64), segments, int(plan.extra)
