"""Receptive field R(p) of the paper's eq. (2): every point within ``hops`` kNN hops of p.

knn^0(p) = {p}, knn^l(p) = union of knn(q) over q in knn^(l-1)(p), R(p) = union over l = 0..L.
Edges are followed in the kNN direction only (q is a neighbour of p, not the reverse), as in
eq. (2): those are the points whose features flow into f_p through the LFA blocks.
"""

from __future__ import annotations

import numpy as np


def receptive_field(knn, index: int, hops: int) -> np.ndarray:
    """Sorted int64 indices of R(p) for p = ``index``, by breadth-first frontier expansion."""
    knn = np.asarray(knn)
    if knn.ndim != 2:
        raise ValueError(f"knn must have shape (N, k), got {knn.shape}")
    if not 0 <= index < len(knn):
        raise ValueError(f"index must be in [0, {len(knn)}), got {index}")
    if hops < 0:
        raise ValueError(f"hops must be >= 0, got {hops}")
    reached = np.zeros(len(knn), dtype=bool)
    reached[index] = True
    frontier = np.array([index], dtype=np.int64)
    for _ in range(hops):
        # only points first reached in the last hop can reach anything new
        candidates = np.unique(knn[frontier].ravel())
        frontier = candidates[~reached[candidates]].astype(np.int64)
        if len(frontier) == 0:
            break
        reached[frontier] = True
    return np.flatnonzero(reached).astype(np.int64)
