"""The numba CPU kernel of :func:`st3d_edge.geometry.grid_fill.grid_idw_fill` (imports numba).

One query per iteration: the ``neighbours`` nearest of its candidates (its seed sample and
the seed's first kNN entries) by insertion, the exactness certificate, and the IDW value.
No fastmath: the distances and weights must round as the kd-tree reference's do.
"""

from __future__ import annotations

import numba
import numpy as np

# queries per parallel task: the scratch arrays are allocated once per task, not per query
CHUNK = 4096


@numba.njit(parallel=True, cache=True)
def fill_from_candidates(queries, pixels, seed_image, samples, scores, knn, neighbours, power, out, certain):
    """``out[i]``: the IDW value of query i over its best ``neighbours`` candidates (its seed
    ``seed_image[pixels[i]]`` and the seed's kNN row ``knn[seed]``); ``certain[i]``: no
    sampled point outside the candidates can be among its nearest.

    A sample s outside the seed's kNN row is at least ``reach`` (the distance from the seed to
    the row's last entry) from the seed, so at least ``reach - |q - seed|`` from q: when the
    ``neighbours``-th best candidate is strictly closer than that, the candidates hold the true
    nearest (float64, like the reference).
    """
    candidates = knn.shape[1]
    for task in numba.prange((queries.shape[0] + CHUNK - 1) // CHUNK):
        best_d2 = np.empty(neighbours)
        best_j = np.empty(neighbours, dtype=np.int64)
        for i in range(task * CHUNK, min((task + 1) * CHUNK, queries.shape[0])):
            _fill_one(
                i,
                queries,
                pixels,
                seed_image,
                samples,
                scores,
                knn,
                candidates,
                neighbours,
                power,
                out,
                certain,
                best_d2,
                best_j,
            )


@numba.njit(inline="always")
def _fill_one(
    i,
    queries,
    pixels,
    seed_image,
    samples,
    scores,
    knn,
    candidates,
    neighbours,
    power,
    out,
    certain,
    best_d2,
    best_j,
):
    seed = seed_image[pixels[i, 0], pixels[i, 1]]
    qx, qy, qz = np.float64(queries[i, 0]), np.float64(queries[i, 1]), np.float64(queries[i, 2])
    best_d2[:] = np.inf
    for t in range(candidates):
        j = knn[seed, t]
        dx = np.float64(samples[j, 0]) - qx
        dy = np.float64(samples[j, 1]) - qy
        dz = np.float64(samples[j, 2]) - qz
        d2 = dx * dx + dy * dy + dz * dz
        if d2 < best_d2[neighbours - 1]:
            slot = neighbours - 1
            while slot > 0 and best_d2[slot - 1] > d2:
                best_d2[slot] = best_d2[slot - 1]
                best_j[slot] = best_j[slot - 1]
                slot -= 1
            best_d2[slot] = d2
            best_j[slot] = j
    last = knn[seed, candidates - 1]
    ex = np.float64(samples[last, 0]) - np.float64(samples[seed, 0])
    ey = np.float64(samples[last, 1]) - np.float64(samples[seed, 1])
    ez = np.float64(samples[last, 2]) - np.float64(samples[seed, 2])
    sx = np.float64(samples[seed, 0]) - qx
    sy = np.float64(samples[seed, 1]) - qy
    sz = np.float64(samples[seed, 2]) - qz
    reach = np.sqrt(ex * ex + ey * ey + ez * ez) - np.sqrt(sx * sx + sy * sy + sz * sz)
    certain[i] = np.sqrt(best_d2[neighbours - 1]) < reach
    if not certain[i]:
        out[i] = 0.0  # the caller recomputes it exactly
    elif best_d2[0] == 0.0:
        # coinciding sampled points: their mean score, as idw_fill
        total, hits = 0.0, 0
        for slot in range(neighbours):
            if best_d2[slot] == 0.0:
                total += scores[best_j[slot]]
                hits += 1
        out[i] = total / hits
    else:
        total, weights = 0.0, 0.0
        for slot in range(neighbours):
            r = np.sqrt(best_d2[slot])
            # numpy squares for ** 2.0 (the reference's dist**power); pow() is slower and can
            # round differently
            weight = 1.0 / (r * r) if power == 2.0 else 1.0 / r**power
            total += weight * scores[best_j[slot]]
            weights += weight
        out[i] = total / weights


@numba.njit(cache=True)
def propagate_seeds(owner, rows, cols):
    """Every pixel's nearest sampled pixel, found by two raster passes that hand each pixel its
    neighbours' seeds (Danielsson's vector propagation with 8SSEDT's masks): ``owner`` holds
    the sampled pixels' rows of the sample (``rows``/``cols`` their pixels) and -1 elsewhere,
    and is filled in place. Nearly always the Euclidean nearest, rarely one a little farther:
    the fill's certificate needs only some near seed, and checks whichever it gets."""
    height, width = owner.shape
    # each pixel's seed pixel as a flat index, beside its owner: the passes never look it up
    seed = np.full(height * width, -1, dtype=np.int64)
    flat = owner.reshape(-1)
    for s in range(rows.shape[0]):
        seed[rows[s] * width + cols[s]] = rows[s] * width + cols[s]
    for r in range(height):
        _pass(flat, seed, width, r, 0, width, 1, r - 1)
        _pass(flat, seed, width, r, width - 2, -1, -1, -1)
    for r in range(height - 1, -1, -1):
        _pass(flat, seed, width, r, width - 1, -1, -1, r + 1 if r + 1 < height else -1)
        _pass(flat, seed, width, r, 1, width, 1, -1)
    return owner


@numba.njit(inline="always")
def _pass(flat, seed, width, r, start, stop, step, other):
    # along row r in direction ``step``: each pixel takes the nearest seed of the pixel before
    # it and, when ``other`` is a row, of the three pixels of that row around it
    for c in range(start, stop, step):
        at = r * width + c
        best_seed = seed[at]
        best = _d2(best_seed, r, c, width)
        candidates = (c - step, c - 1, c, c + 1) if other >= 0 else (c - step, -1, -1, -1)
        for i in range(4):
            cc = candidates[i]
            if cc < 0 or cc >= width:  # off the image, or no other row (-1)
                continue
            rr = r if i == 0 else other
            s = seed[rr * width + cc]
            if s >= 0:
                d = _d2(s, r, c, width)
                if d < best:
                    best, best_seed = d, s
                    flat[at] = flat[rr * width + cc]
        seed[at] = best_seed


@numba.njit(inline="always")
def _d2(s, r, c, width):
    if s < 0:
        return np.iinfo(np.int64).max
    dr = r - s // width
    dc = c - s % width
    return dr * dr + dc * dc
