"""A nearest-neighbour memory bank of good-part descriptors (PatchCore style), numpy only.

Shared by the shipped scorer's geometric score and the "Back to the Feature" peer baseline:
descriptors of the good training clouds, reduced by greedy coreset selection (the farthest
descriptor from those already chosen, as PatchCore) to a bounded size; a point's score is the
Euclidean distance of its descriptor to the nearest bank entry (exact, scipy's cKDTree).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

CORESET_FRACTION = 0.1


def greedy_coreset(features: np.ndarray, count: int, start: int = 0) -> np.ndarray:
    """int64[count] rows chosen greedily: each next row is the one farthest from those chosen.

    Keeps each row's distance to the chosen set and lowers it with every new row, so a pick
    costs one pass over the features rather than a pass per chosen row; the pass is one
    matrix-vector product (|x|^2 - 2 x.f + |f|^2), several times faster than forming x - f.
    """
    features = np.ascontiguousarray(features, dtype=np.float64)
    total = len(features)
    count = min(int(count), total)
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    norms = np.einsum("ij,ij->i", features, features)
    chosen = np.empty(count, dtype=np.int64)
    chosen[0] = start
    nearest = np.sum((features - features[start]) ** 2, axis=1)
    step = np.empty(total)
    for i in range(1, count):
        pick = int(np.argmax(nearest))
        chosen[i] = pick
        np.matmul(features, features[pick], out=step)
        step *= -2.0
        step += norms
        step += norms[pick]
        np.minimum(nearest, step, out=nearest)
    return chosen


def build_bank(
    descriptors: Iterable[np.ndarray], fraction: float = CORESET_FRACTION, max_size: int | None = None
) -> np.ndarray:
    """float32[B, D]: the coreset of all ``descriptors`` (``fraction`` of them, at most ``max_size``)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"coreset fraction must be in (0, 1], got {fraction}")
    stacked = np.concatenate([np.asarray(d, dtype=np.float32) for d in descriptors])
    if len(stacked) == 0:
        raise ValueError("the memory bank needs at least one descriptor")
    keep = max(1, int(round(fraction * len(stacked))))
    if max_size is not None:
        keep = min(keep, int(max_size))
    if keep < len(stacked):
        stacked = stacked[greedy_coreset(stacked, keep)]
    return np.ascontiguousarray(stacked, dtype=np.float32)


class MemoryBank:
    """Distance of descriptors to their nearest bank entry."""

    def __init__(self, bank: np.ndarray) -> None:
        from scipy.spatial import cKDTree

        self.bank = np.ascontiguousarray(bank, dtype=np.float32)
        if self.bank.ndim != 2 or len(self.bank) == 0:
            raise ValueError(f"a memory bank is a non-empty (B, D) array, got shape {self.bank.shape}")
        self._tree = cKDTree(self.bank.astype(np.float64))

    def distances(self, descriptors: np.ndarray, eps: float = 0.0) -> np.ndarray:
        """float32[m] Euclidean distance of each descriptor row to its nearest bank entry;
        ``eps`` > 0: to a bank entry at most (1 + eps) times farther than the nearest (cKDTree's
        approximate search, which prunes more of the tree; 0, the default, is exact)."""
        query = np.asarray(descriptors, dtype=np.float64)
        if query.ndim != 2 or query.shape[1] != self.bank.shape[1]:
            raise ValueError(f"descriptors must have shape (m, {self.bank.shape[1]}), got {query.shape}")
        distance, _ = self._tree.query(query, k=1, eps=eps, workers=-1)
        return distance.astype(np.float32)
