"""Slow, obvious references for the CUDA geometry kernels, and tiny hand-worked checks of them.

The references use the kernels' arithmetic (float32 squared distances summed as
``(dx*dx + dy*dy) + dz*dz``) and tie rule (lowest index wins), so the kernel tests can demand
identical output; they are themselves checked against the package's float64/cKDTree
references on random data, where ties do not occur.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from tests.helpers import EXACT, FLOAT32_DIFFERENT_KERNELS, assert_close


def sqdist32(points: np.ndarray, q: np.ndarray) -> np.ndarray:
    diff = np.asarray(points, np.float32) - np.asarray(q, np.float32)
    return (diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1]) + diff[:, 2] * diff[:, 2]


def _fps_steps(pts: np.ndarray, min_d: np.ndarray, last: int, steps: int) -> np.ndarray:
    """``steps`` FPS picks after ``last`` (-1: none), updating ``min_d`` (chosen points hold -1)."""
    out = np.empty(steps, dtype=np.int64)
    for s in range(steps):
        if last >= 0:
            np.minimum(min_d, sqdist32(pts, pts[last]), out=min_d)
        last = int(np.argmax(min_d))
        out[s] = last
        min_d[last] = -1.0
    return out


def fps_float32(points, n: int, start: int = 0) -> np.ndarray:
    """Exact FPS from ``start``; a chosen point is never chosen again (its distance is -1)."""
    pts = np.asarray(points, dtype=np.float32)
    if n >= len(pts):
        return np.arange(len(pts), dtype=np.int64)
    min_d = np.full(len(pts), np.inf, dtype=np.float32)
    min_d[start] = -1.0
    return np.concatenate([[start], _fps_steps(pts, min_d, start, n - 1)]).astype(np.int64)


def fps_tiled_float32(points, n: int, tile_points: int) -> np.ndarray:
    """The tiled sampler: the package's tile plan, ``fps_float32`` per tile (tiles in plan order),
    then ``plan.extra`` global FPS steps from each point's distance to its own tile's samples."""
    from st3d_edge.geometry.tiles import tile_plan

    pts = np.asarray(points, dtype=np.float32)
    if n >= len(pts):
        return np.arange(len(pts), dtype=np.int64)
    plan = tile_plan(pts, n, tile_points=tile_points)
    min_d = np.empty(len(pts), dtype=np.float32)
    parts = []
    for t in range(plan.tiles):
        members = plan.tile(t)
        local = pts[members]
        picked = fps_float32(local, int(plan.quota[t]), int(np.flatnonzero(members == plan.starts[t])[0]))
        d = np.full(len(members), np.inf, dtype=np.float32)
        for p in picked:
            np.minimum(d, sqdist32(local, local[p]), out=d)
        d[picked] = -1.0
        min_d[members] = d
        parts.append(members[picked])
    parts.append(_fps_steps(pts, min_d, -1, int(plan.extra)))
    return np.concatenate(parts)


def knn_float32(points, k: int) -> np.ndarray:
    """Self in column 0, then the k-1 nearest others, ties to the lower index."""
    pts = np.asarray(points, dtype=np.float32)
    out = np.empty((len(pts), k), dtype=np.int64)
    for i in range(len(pts)):
        d = sqdist32(pts, pts[i]).astype(np.float64)
        d[i] = -1.0  # self first, even before its duplicates
        out[i] = np.argsort(d, kind="stable")[:k]
    return out


def idw_float32(samples, scores, queries, neighbours: int = 4, power: float = 2.0) -> np.ndarray:
    samples = np.asarray(samples, np.float32)
    out = np.empty(len(queries), dtype=np.float32)
    nb = min(neighbours, len(samples))
    for q, point in enumerate(np.asarray(queries, np.float32)):
        d = sqdist32(samples, point)
        near = np.argsort(d, kind="stable")[:nb]
        if d[near[0]] == 0.0:
            out[q] = np.mean(scores[near[d[near] == 0.0]].astype(np.float64))
            continue
        w = 1.0 / d[near].astype(np.float64) ** (power / 2.0)
        out[q] = np.sum(w * scores[near].astype(np.float64)) / np.sum(w)
    return out


def knn_ckdtree_self_first(points, k: int) -> np.ndarray:
    """cKDTree's answer with the point itself moved to column 0 (duplicates may precede it)."""
    pts = np.asarray(points, np.float64)
    _, idx = cKDTree(pts).query(pts, k=min(k + 1, len(pts)))
    out = np.empty((len(pts), k), dtype=np.int64)
    for i, row in enumerate(idx):
        others = [j for j in row if j != i][: k - 1]
        out[i] = [i, *others]
    return out


def assert_knn_equal_up_to_ties(points, got, ref, what: str = "knn") -> None:
    """Column 0 is self; the neighbour distances agree; neighbours clearly inside the k-th agree."""
    pts = np.asarray(points, np.float64)
    got = np.asarray(got, np.int64)
    ref = np.asarray(ref, np.int64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert_close(got[:, 0], np.arange(len(pts)), **EXACT, what=f"{what}: self column")
    for i in range(len(pts)):
        dg = np.sort(np.linalg.norm(pts[got[i, 1:]] - pts[i], axis=1))
        dr = np.sort(np.linalg.norm(pts[ref[i, 1:]] - pts[i], axis=1))
        assert_close(dg, dr, rtol=1e-6, atol=1e-7, what=f"{what}: distances of row {i}")
        if len(dr):
            inside = dr[-1] * (1 - 1e-6)
            sure_g = {j for j in got[i, 1:] if np.linalg.norm(pts[j] - pts[i]) < inside}
            sure_r = {j for j in ref[i, 1:] if np.linalg.norm(pts[j] - pts[i]) < inside}
            assert sure_g == sure_r, f"{what}: row {i} neighbours {sorted(sure_g)} != {sorted(sure_r)}"


# ---- the references on hand-worked cases ---------------------------------------------------

LINE = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0], [10, 0, 0]], dtype=np.float32)


def test_fps_reference_on_a_line():
    # from 0: the far end (10), then 3 (min distance 3 beats 2's 2), then 1 and 2 tie at 1 -> lower
    assert fps_float32(LINE, 4).tolist() == [0, 4, 3, 1]
    assert fps_float32(LINE, 3, start=2).tolist() == [2, 4, 0]
    assert fps_float32(LINE, 9).tolist() == [0, 1, 2, 3, 4]


def test_fps_reference_ties_go_to_the_lowest_index():
    square = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float32)
    assert fps_float32(square, 3).tolist() == [0, 3, 1]


def test_knn_reference_puts_self_before_its_duplicate():
    pts = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0], [5, 0, 0]], dtype=np.float32)
    assert knn_float32(pts, 3).tolist() == [[0, 1, 2], [1, 0, 2], [2, 0, 1], [3, 2, 0]]


def test_idw_reference_by_hand():
    samples = np.array([[0, 0, 0], [2, 0, 0]], dtype=np.float32)
    scores = np.array([1.0, 4.0], dtype=np.float32)
    queries = np.array([[1, 0, 0], [0.5, 0, 0], [2, 0, 0]], dtype=np.float32)
    # equal weights at the midpoint; 1/0.25 vs 1/2.25 at 0.5; an exact hit takes the score
    expected = [2.5, (4 * 1 + 4 / 2.25) / (4 + 1 / 2.25), 4.0]
    got = idw_float32(samples, scores, queries, neighbours=4, power=2.0)
    assert_close(got, expected, rtol=1e-6, atol=0.0, what="idw by hand")


def test_references_agree_with_the_package_on_random_clouds():
    from st3d_edge.geometry.fill import idw_fill
    from st3d_edge.geometry.fps import fps_exact
    from st3d_edge.geometry.knn import knn_bruteforce, knn_indices

    rng = np.random.default_rng(1)
    pts = rng.normal(size=(300, 3)).astype(np.float32)
    pts[250:260] = pts[0]  # duplicates: self first, coincident samples averaged
    assert_close(fps_float32(pts, 60), fps_exact(pts, 60), **EXACT, what="fps vs fps_exact")
    assert_knn_equal_up_to_ties(pts, knn_float32(pts, 10), knn_ckdtree_self_first(pts, 10))
    assert_knn_equal_up_to_ties(pts, knn_float32(pts, 10), knn_indices(pts, 10), what="knn_indices")
    assert_close(knn_float32(pts, 10), knn_bruteforce(pts, 10), **EXACT, what="knn_bruteforce")
    # samples at distinct positions: coincident samples with different scores are a tie that
    # cKDTree and the index rule may split differently among the neighbours
    samples, scores = pts[:250:3], rng.random(84).astype(np.float32)
    assert_close(
        idw_float32(samples, scores, pts),
        idw_fill(samples, scores, pts),
        **FLOAT32_DIFFERENT_KERNELS,
        what="idw vs idw_fill",
    )


def test_fps_reference_never_repeats_a_point_on_duplicates():
    pts = np.repeat(LINE[:3], 2, axis=0)  # 0,0,1,1,2,2 on a line
    # 0, then the far end (4), then the middle (2), then the unchosen duplicates in index order
    assert fps_float32(pts, 5).tolist() == [0, 4, 2, 1, 3]


def test_tiled_reference_agrees_with_the_package_sampler():
    from st3d_edge.geometry.tiles import fps_tiled, tile_plan

    rng = np.random.default_rng(2)
    pts = rng.random((400, 3)).astype(np.float32)
    got = fps_tiled_float32(pts, 80, tile_points=64)
    plan = tile_plan(pts, 80, tile_points=64)
    assert plan.tiles > 1 and plan.extra > 0  # both passes are exercised
    assert len(np.unique(got)) == 80
    ids = plan.tile_ids()[got[: 80 - plan.extra]]
    assert_close(np.bincount(ids, minlength=plan.tiles), plan.quota, **EXACT, what="per-tile counts")
    assert_close(got, fps_tiled(pts, 80, tile_points=64), **EXACT, what="vs st3d_edge fps_tiled")
