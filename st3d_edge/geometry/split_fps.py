"""Farthest point sampling of two halves side by side: the ``fps-split`` sampler (numba, CPU).

Exact FPS is one sequence of picks, each depending on every one before it, so it runs on one
core (:mod:`st3d_edge.geometry.grid_fps`) while the other waits. Here the cloud is cut in two
at the median of its longest axis, each half is sampled by exact FPS on its own core, and the
two sequences are merged by the distance at which each sample was picked, largest first, as
the single FPS would have ordered them: the result is the first ``n`` of that merge.

How it differs from exact FPS: a half does not see the other half's samples, so within one
pick distance of the cut both halves place samples (a strip about one sample spacing wide gets
up to twice the density), and everything after that differs as any perturbed FPS does. The
covering radius stays that of exact FPS (an 800 x 800 scan, 64000 of 626414 points: 0.23917
against 0.23932 mm). In detection (benchmarks/sampler_split.json, synthetic data, runs
trained with exact FPS): on nine held-out families AU-PRO@0.3 moved by -0.023 to +0.028 (mean
+0.001) and image AUROC by -0.023 to +0.006 (mean -0.006), where exact FPS merely started from
another point moved them by -0.002 to +0.014 (mean +0.006) and -0.037 to +0.009 (mean -0.007).
Runs trained and tested with it, on three of those families: bagel AU-PRO@0.3 0.828 (exact
FPS 0.829), gear 0.968 (0.964), stepblock 0.831 (0.881): not the default (``fps``) until a
comparison with retrained controls says the stepblock drop is noise.
Not kept: leaving out a pick that lies within its pick distance of the other half's (the strip
then has exact FPS's spacing, but holes: covering radius 1.78 times exact FPS's).

Each half is sampled to its share of ``n`` by point count plus :data:`QUOTA_MARGIN`, so the
merge has the picks it needs when the halves' densities differ; a half whose every pick made
the merge (it might have had more above the cut-off) is sampled again with twice the quota,
so the merge is the one of the two unbounded sequences. Deterministic: the cut breaks ties by
index, each half starts from its lowest index, and the merge puts the first half's first
among equal distances.
Output, in pick order: the merged sequence.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from st3d_edge.geometry.fps import checked_request
from st3d_edge.geometry.grid_fps import fps_grid_reach

QUOTA_MARGIN = 0.1  # each half is sampled to (1 + margin) of its share of n by point count
QUOTA_SLACK = 16  # and this many more, for small n


def halves(cloud: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cloud's indices (ascending) on each side of the median of its longest axis; the
    first half holds ``N // 2`` points, equal coordinates going to the lower indices first."""
    # the axis from every 16th point: numpy's min/max over the rows of an (N, 3) array take
    # longer than the rest of the split
    every = cloud[:: max(1, len(cloud) // 65536)]
    axis = int(np.argmax(every.max(axis=0) - every.min(axis=0)))
    coord = np.ascontiguousarray(cloud[:, axis])
    count = len(cloud) // 2
    cut = np.partition(coord, count)[count]
    below = coord < cut
    ties = np.flatnonzero(coord == cut)
    below[ties[: count - int(np.count_nonzero(below))]] = True
    return np.flatnonzero(below), np.flatnonzero(~below)


def fps_split(points, n: int, workers: int | None = None) -> np.ndarray:
    """``min(n, N)`` indices (int64) in pick order, sampled as the module docstring says;
    ``workers``: threads for the two halves (1 samples them one after the other, with the same
    result; by default two if numba may use two, see ``numba.set_num_threads``)."""
    if workers is None:
        import numba

        workers = numba.get_num_threads()
    cloud, n, done = checked_request(points, n, 0)
    if done is not None:
        return done
    parts = halves(cloud)
    share = n / len(cloud) * (1 + QUOTA_MARGIN)
    quotas = [min(len(p), math.ceil(share * len(p)) + QUOTA_SLACK) for p in parts]

    def sample(i: int) -> tuple[np.ndarray, np.ndarray]:
        part = parts[i]
        if len(part) == 1:
            return part, np.full(1, np.inf)
        picks, reach = fps_grid_reach(cloud[part], quotas[i])  # a quota may be the whole half
        return part[picks], reach

    with ThreadPoolExecutor(max_workers=max(1, min(2, workers))) as pool:
        results = list(pool.map(sample, range(2)))
        while True:
            chosen, taken = _merge(results, n)
            short = [i for i in range(2) if taken[i] == quotas[i] and quotas[i] < len(parts[i])]
            if not short:
                return chosen
            for i in short:
                quotas[i] = min(len(parts[i]), 2 * quotas[i])
            for i, result in zip(short, pool.map(sample, short), strict=True):
                results[i] = result


def _merge(results: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, list[int]]:
    """The first n of both halves' picks by pick distance, largest first (equal distances: the
    first half's first, each half's in its pick order), and how many each half gave."""
    index = np.concatenate([r[0] for r in results])
    reach = np.concatenate([r[1] for r in results])
    best = np.argsort(-reach, kind="stable")[:n]
    first = len(results[0][0])
    from_first = int(np.count_nonzero(best < first))
    return index[best], [from_first, len(best) - from_first]
