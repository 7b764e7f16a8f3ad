"""The normals' eigen solvers: LAPACK per matrix (numpy's bits) and the closed form against it."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.geometry import eigen3, fpfh


def _covariances(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(well-separated matrices, degenerate ones): random, planar and near-planar point sets;
    collinear, zero, identity and isotropic ones."""
    rng = np.random.default_rng(seed)
    spread = rng.normal(size=(400, 3, 3)) * rng.uniform(1e-7, 1.0, (400, 1, 1))
    flat = rng.normal(size=(200, 3, 2)) * 1e-3  # planar neighbourhoods: a zero eigenvalue
    thin = rng.normal(size=(200, 3, 3)) * np.array([1e-3, 1e-3, 1e-6])  # a noisy surface patch
    rotations = np.linalg.qr(rng.normal(size=(200, 3, 3)))[0]
    thin = rotations @ thin
    separated = np.concatenate(
        [spread @ spread.transpose(0, 2, 1), flat @ flat.transpose(0, 2, 1), thin @ thin.transpose(0, 2, 1)]
    )
    line = rng.normal(size=(100, 3, 1)) * 1e-3  # collinear: the smallest eigenvalue repeated
    degenerate = np.concatenate(
        [line @ line.transpose(0, 2, 1), np.zeros((1, 3, 3)), np.eye(3)[None], 2.5 * np.eye(3)[None]]
    )
    return separated, degenerate


def test_lapack_solver_is_numpys_eigh_bit_for_bit():
    # the same LAPACK routine per matrix: the same bits, so FPFH's source/target ties fall the
    # same way as on the numpy path (a vector 1e-13 away flips some)
    cov = np.concatenate(_covariances(8))
    expected = np.linalg.eigh(cov)[1][:, :, 0]
    np.testing.assert_array_equal(eigen3.smallest_eigenvectors(cov, "lapack"), expected)


def test_closed_form_is_the_same_eigenvector_to_rounding():
    separated, _ = _covariances(9)
    fast = eigen3.smallest_eigenvectors(separated, "closed-form")
    reference = np.linalg.eigh(separated)[1][:, :, 0]
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-14)
    # the same direction; the sign is arbitrary (the caller orients)
    assert np.max(1.0 - np.abs(np.einsum("ij,ij->i", fast, reference))) < 1e-13
    # and an eigenvector of the smallest eigenvalue, not just any unit vector
    values = np.linalg.eigvalsh(separated)[:, 0]
    residual = np.einsum("mij,mj->mi", separated, fast) - values[:, None] * fast
    scale = np.abs(separated).max(axis=(1, 2))
    assert np.max(np.linalg.norm(residual, axis=1) / scale) < 1e-12


def test_closed_form_hands_ill_defined_directions_to_lapack():
    _, degenerate = _covariances(10)
    np.testing.assert_array_equal(
        eigen3.smallest_eigenvectors(degenerate, "closed-form"), np.linalg.eigh(degenerate)[1][:, :, 0]
    )


def test_normals_by_either_solver_agree_on_a_scanned_surface():
    rng = np.random.default_rng(3)
    u, v = np.meshgrid(np.linspace(-0.01, 0.01, 30), np.linspace(-0.01, 0.01, 30))
    z = 0.4 + 2.0 * (u**2 - v**2) + rng.normal(scale=2e-5, size=u.shape)
    cloud = np.stack([u, v, z], axis=-1).reshape(-1, 3)
    lapack = fpfh.estimate_normals(cloud, 0.002, 12, kernels=True, solver="lapack")
    closed = fpfh.estimate_normals(cloud, 0.002, 12, kernels=True, solver="closed-form")
    assert np.abs(lapack - closed).max() < 1e-13  # both oriented towards the camera


def test_an_unknown_solver_is_refused():
    with pytest.raises(ValueError, match="unknown eigen solver 'jacobi'"):
        eigen3.smallest_eigenvectors(np.eye(3)[None], "jacobi")
