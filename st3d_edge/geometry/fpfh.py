"""Fast Point Feature Histograms (Rusu et al., 2009) in numpy: the edge's hand-crafted descriptor.

The same 33-bin descriptor Open3D computes (three 11-bin histograms of the Darboux-frame
angles, the distance feature unused), written with whole-array numpy so the edge runtime needs
no Open3D. Neighbourhoods are fixed-size kNN lists cut at a radius (cKDTree's
``distance_upper_bound``), which is Open3D's hybrid search.

Decisions:

* Normals: PCA (smallest eigenvector of the neighbourhood covariance) over at most
  ``normal_nn`` neighbours within ``normal_radius``, oriented towards the camera at the origin
  (scans are in camera coordinates), so a surface and its defects get consistent signs. By
  default the numba path calls the same LAPACK routine as numpy's ``eigh`` for each matrix,
  from every thread (numpy's batched call runs one matrix at a time on one thread): the same
  bits, which the tests rely on, since a normal 1e-13 away flips some of the pair kernel's
  source/target ties. The geometric score solves them in closed form
  (:mod:`st3d_edge.geometry.eigen3`, 20x faster, equal to about 1e-15).
* Pair features follow Open3D's ``ComputePairFeatures`` (source and target swapped so the
  smaller angle to the connecting line is the source's); each histogram entry adds
  ``100 / neighbours``.
* FPFH(p) = SPFH(p) + the neighbours' SPFH weighted by 1 / squared distance, each of the three
  histograms of the weighted sum rescaled to total 100 (as Open3D does).
* A point with no neighbour inside the radius gets an all-zero histogram.

:func:`fpfh_reference` is the slow per-point loop the tests compare against.
"""

from __future__ import annotations

import numpy as np

from st3d_edge.geometry._checks import as_cloud

BINS = 11
NORMAL_NN = 30
FEATURE_NN = 100
# radii as multiples of the point spacing s: Open3D's registration defaults relative to it
NORMAL_RADIUS_S = 2.0
FEATURE_RADIUS_S = 5.0


def radius_neighbours(points: np.ndarray, radius: float, max_nn: int) -> tuple[np.ndarray, np.ndarray]:
    """(int64[m, K] indices, float64[m, K] distances) of up to ``max_nn`` points within ``radius``.

    Column 0 is the point itself; missing entries hold index ``m`` and distance ``inf``; a
    point at exactly ``radius`` is outside (cKDTree's rule, which :func:`within` keeps).
    """
    from st3d_edge.geometry.kdtree import nearest_in_cloud

    cloud = as_cloud(points)
    dist, idx = nearest_in_cloud(cloud, min(max_nn, len(cloud)), radius=radius)
    return idx, dist


def neighbour_count(normal_nn: int = NORMAL_NN, feature_nn: int = FEATURE_NN) -> int:
    """How many nearest neighbours (the point included) :func:`fpfh` reads of each point."""
    return max(normal_nn, feature_nn)


def within(idx: np.ndarray, dist: np.ndarray, radius: float, max_nn: int) -> np.ndarray:
    """The first ``max_nn`` columns of a wider, farther query, cut at ``radius``: the same lists
    :func:`radius_neighbours` gives for (radius, max_nn), up to the order of equidistant points."""
    cut = idx[:, :max_nn].copy()
    cut[dist[:, :max_nn] >= radius] = len(idx)
    return cut


def _covariances(
    cloud: np.ndarray,
    idx: np.ndarray,
    kernels: bool,
    dist: np.ndarray | None = None,
    radius: float = np.inf,
    max_nn: int = NORMAL_NN,
) -> np.ndarray:
    """The covariance of each point's neighbours; with ``dist`` the lists are cut to
    (``radius``, ``max_nn``) as :func:`within` cuts them."""
    from st3d_edge.geometry import fpfh_kernels

    if dist is not None:
        if kernels:  # the kernel cuts the lists as it reads them, without within's copy
            return fpfh_kernels.covariances(cloud, idx, dist, radius, max_nn)
        idx = within(idx, dist, radius, max_nn)
    if kernels:
        return fpfh_kernels.covariances(cloud, idx)
    present = idx < len(cloud)
    padded = np.vstack([cloud, np.zeros((1, 3))])
    nbrs = padded[idx]  # (m, K, 3), missing rows are zeros and masked out below
    count = present.sum(axis=1, keepdims=True)
    mean = (nbrs * present[..., None]).sum(axis=1) / count
    centred = (nbrs - mean[:, None]) * present[..., None]
    return np.einsum("mki,mkj->mij", centred, centred) / count[..., None]


def estimate_normals(
    points: np.ndarray,
    radius: float,
    max_nn: int = NORMAL_NN,
    idx: np.ndarray | None = None,
    kernels: bool | None = None,
    dist: np.ndarray | None = None,
    solver: str = "lapack",
) -> np.ndarray:
    """float64[m, 3] unit PCA normals, oriented towards the origin; ``idx``: the neighbour
    lists of :func:`radius_neighbours` for (radius, max_nn), when the caller has them, or, with
    their ``dist``, a wider nearest-first query's, cut here as :func:`within` cuts them;
    ``kernels`` as for :func:`fpfh`; ``solver``: the eigen solver of the kernels
    (:mod:`st3d_edge.geometry.eigen3`; the numpy path always takes numpy's ``eigh``)."""
    cloud = as_cloud(points).astype(np.float64)
    if idx is None:
        idx, _ = radius_neighbours(cloud, radius, max_nn)
    from st3d_edge.geometry import eigen3
    from st3d_edge.numba_support import numba_available

    use_kernels = numba_available() if kernels is None else kernels
    cov = _covariances(cloud, idx, use_kernels, dist, radius, max_nn)
    if use_kernels:
        normals = eigen3.smallest_eigenvectors(cov, solver)
    else:
        normals = np.linalg.eigh(cov)[1][:, :, 0]
    flip = np.einsum("ij,ij->i", normals, -cloud) < 0.0
    normals[flip] *= -1.0
    return normals


def _dot(a, b):
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def _cross(a, b):
    return np.stack(
        [
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        ],
        axis=-1,
    )


def pair_features(p1, n1, p2, n2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(f0, f1, f2, ok) of point pairs (broadcasting arrays of shape (..., 3)); ok False where undefined."""
    d = p2 - p1
    length = np.sqrt(_dot(d, d))
    safe = np.where(length > 0.0, length, 1.0)
    a1 = _dot(n1, d) / safe
    a2 = _dot(n2, d) / safe
    # Open3D's test, arccos included: comparing |a1| < |a2| instead is the same in exact
    # arithmetic, but arccos rounds near-ties (symmetric pairs on a regular grid) alike, so
    # normals equal to ~1e-13 still give the same histograms
    swap = np.arccos(np.clip(np.abs(a1), 0.0, 1.0)) > np.arccos(np.clip(np.abs(a2), 0.0, 1.0))
    src = np.where(swap[..., None], n2, n1)
    dst = np.where(swap[..., None], n1, n2)
    d = np.where(swap[..., None], -d, d)
    f2 = np.where(swap, -a2, a1)
    v = _cross(d, src)
    v_norm = np.sqrt(_dot(v, v))
    v = v / np.where(v_norm > 0.0, v_norm, 1.0)[..., None]
    w = _cross(src, v)
    f1 = _dot(v, dst)
    f0 = np.arctan2(_dot(w, dst), _dot(src, dst))
    ok = (length > 0.0) & (v_norm > 0.0)
    return f0, f1, f2, ok


def _bins(f0, f1, f2) -> np.ndarray:
    """int64[..., 3] histogram bins of the three angle features (f0 in [-pi, pi], f1, f2 in [-1, 1])."""
    b0 = np.floor(BINS * (f0 + np.pi) / (2.0 * np.pi))
    b1 = np.floor(BINS * (f1 + 1.0) * 0.5)
    b2 = np.floor(BINS * (f2 + 1.0) * 0.5)
    return np.clip(np.stack([b0, b1, b2], axis=-1), 0, BINS - 1).astype(np.int64)


def spfh(points: np.ndarray, normals: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """float64[m, 33] simplified histograms over each point's neighbours (``idx`` from radius_neighbours)."""
    m, k = idx.shape
    pts = np.vstack([points.astype(np.float64), np.zeros((1, 3))])
    nrm = np.vstack([normals, np.zeros((1, 3))])
    others = idx[:, 1:]
    present = others < m
    f0, f1, f2, ok = pair_features(pts[:m, None], nrm[:m, None], pts[others], nrm[others])
    use = present & ok
    count = present.sum(axis=1)
    increment = np.where(count > 0, 100.0 / np.maximum(count, 1), 0.0)
    bins = _bins(f0, f1, f2) + BINS * np.arange(3)  # (m, k - 1, 3) into the 33 bins
    rows = np.broadcast_to(np.arange(m)[:, None, None], bins.shape)
    weights = np.broadcast_to((use * increment[:, None])[..., None], bins.shape)
    flat = np.bincount((rows * 3 * BINS + bins).ravel(), weights=weights.ravel(), minlength=m * 3 * BINS)
    return flat.reshape(m, 3 * BINS)


def fpfh(
    points,
    normal_radius: float,
    feature_radius: float,
    normal_nn: int = NORMAL_NN,
    feature_nn: int = FEATURE_NN,
    kernels: bool | None = None,
    neighbours: tuple[np.ndarray, np.ndarray] | None = None,
    normals_solver: str = "lapack",
) -> np.ndarray:
    """float32[m, 33] FPFH descriptors of a cloud (see the module docstring).

    ``neighbours``: (int64[m, K] indices, float64[m, K] distances) of each point's nearest
    points, nearest first (the point itself, or a duplicate of it, in column 0),
    K >= min(max(normal_nn, feature_nn), m), from a query the caller
    made anyway (the runtime's kNN graph, widened); they are cut to both radii here, so the
    descriptors are those of the default query (:func:`radius_neighbours`).

    ``kernels``: the pair work in numba (:mod:`st3d_edge.geometry.fpfh_kernels`, many times
    faster) or in whole-array numpy (the reference the tests compare with); None picks numba
    when it is installed. ``normals_solver``: see :func:`estimate_normals`.
    """
    from st3d_edge.geometry import fpfh_kernels
    from st3d_edge.numba_support import numba_available

    use_kernels = numba_available() if kernels is None else kernels
    cloud = as_cloud(points).astype(np.float64)
    m = len(cloud)
    # one kd-tree query serves both neighbourhoods
    if neighbours is None:
        idx, dist = radius_neighbours(cloud, max(normal_radius, feature_radius), max(normal_nn, feature_nn))
    else:
        idx, dist = neighbours
        if idx.shape != dist.shape or len(idx) != m or idx.shape[1] < min(max(normal_nn, feature_nn), m):
            raise ValueError(f"neighbour lists of shape {idx.shape} do not cover {m} points")
    normals = estimate_normals(cloud, normal_radius, normal_nn, idx, use_kernels, dist, normals_solver)
    if use_kernels:
        # the kernels cut the lists to the radius and count as they read them (:func:`within`
        # would copy them)
        own = fpfh_kernels.spfh(cloud, normals, idx, BINS, dist, feature_radius, feature_nn)
        summed = fpfh_kernels.weighted_neighbour_sum(own, idx, dist, feature_radius, feature_nn)
    else:
        idx, dist = within(idx, dist, feature_radius, feature_nn), dist[:, :feature_nn]
        own = spfh(cloud, normals, idx)
        summed = _weighted_neighbour_sum(own, idx, dist)
    totals = summed.reshape(m, 3, BINS).sum(axis=2)
    scale = np.where(totals != 0.0, 100.0 / np.where(totals != 0.0, totals, 1.0), 0.0)
    out = summed * np.repeat(scale, BINS, axis=1) + own
    return out.astype(np.float32)


def _weighted_neighbour_sum(own: np.ndarray, idx: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """sum_j own[j] / d_ij^2 over each point's neighbours, as one sparse product."""
    from scipy.sparse import csr_matrix

    m = len(own)
    others, d2 = idx[:, 1:], dist[:, 1:] ** 2
    use = (others < m) & (d2 > 0.0)
    rows = np.broadcast_to(np.arange(m)[:, None], others.shape)[use]
    # a dense (m, K, 33) gather would hold hundreds of MB at large n
    weights = csr_matrix((1.0 / d2[use], (rows, others[use])), shape=(m, m))
    return np.asarray(weights @ own)


def fpfh_reference(
    points,
    normal_radius: float,
    feature_radius: float,
    normal_nn: int = NORMAL_NN,
    feature_nn: int = FEATURE_NN,
) -> np.ndarray:
    """The slow reference: one point and one pair at a time, the same definitions."""
    cloud = as_cloud(points).astype(np.float64)
    m = len(cloud)
    normals = np.zeros((m, 3))
    n_idx, _ = radius_neighbours(cloud, normal_radius, normal_nn)
    for i in range(m):
        nb = cloud[[j for j in n_idx[i] if j < m]]
        cov = np.cov(nb.T, bias=True) if len(nb) > 1 else np.zeros((3, 3))
        vec = np.linalg.eigh(cov)[1][:, 0]
        normals[i] = -vec if vec @ -cloud[i] < 0.0 else vec
    idx, dist = radius_neighbours(cloud, feature_radius, feature_nn)
    own = np.zeros((m, 3 * BINS))
    for i in range(m):
        nbrs = [j for j in idx[i, 1:] if j < m]
        for j in nbrs:
            f0, f1, f2, ok = pair_features(cloud[i], normals[i], cloud[j], normals[j])
            if ok:
                for h, b in enumerate(_bins(f0, f1, f2)):
                    own[i, h * BINS + b] += 100.0 / len(nbrs)
    out = np.zeros((m, 3 * BINS))
    for i in range(m):
        acc = np.zeros(3 * BINS)
        for j, dj in zip(idx[i, 1:], dist[i, 1:], strict=True):
            if j < m and dj > 0.0:
                acc += own[j] / dj**2
        for h in range(3):
            total = acc[h * BINS : (h + 1) * BINS].sum()
            if total != 0.0:
                acc[h * BINS : (h + 1) * BINS] *= 100.0 / total
        out[i] = acc + own[i]
    return out.astype(np.float32)
