"""The fused score: standardisation on good validation points, the memory bank, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest

from st3d_edge.calibration import fusion, geometric, memory_bank, scoring
from st3d_edge.errors import St3dError
from tests.helpers import EXACT, FLOAT32_SAME_MATH, assert_close


def test_fit_fusion_standardises_each_score_on_the_good_points():
    rng = np.random.default_rng(0)
    st, geo = rng.normal(3.0, 2.0, 5000), rng.normal(40.0, 10.0, 5000)
    f = fusion.fit_fusion(st, geo, weights=(1.0, 1.0), standardisation="std")
    combined = f(st, geo)
    # the sum of two standardised independent scores: mean 0, variance about 2
    assert abs(combined.mean()) < 1e-4 and abs(combined.var() - 2.0) < 0.1
    assert_close(
        f(np.array([f.student_location]), np.array([f.geometric_location])), [0.0], rtol=0, atol=1e-6
    )
    only_student = fusion.fit_fusion(st, geo, weights=(1.0, 0.0), standardisation="std")
    assert_close(only_student(st, geo), (st - st.mean()) / st.std(), **FLOAT32_SAME_MATH, what="student only")


def test_fusion_settings_are_checked():
    with pytest.raises(ValueError):
        fusion.Fusion.from_dict(
            {"student_location": 0, "student_scale": 0, "geometric_location": 0, "geometric_scale": 1}
        )
    with pytest.raises(ValueError):
        fusion.Fusion.from_dict(
            {
                "student_location": float("nan"),
                "student_scale": 1,
                "geometric_location": 0,
                "geometric_scale": 1,
            }
        )
    with pytest.raises(ValueError):
        fusion.fit_fusion([1.0, 2.0], [1.0])


def test_bank_is_a_bounded_coreset_and_scores_are_nearest_distances():
    rng = np.random.default_rng(1)
    descriptors = [rng.random((300, 33)).astype(np.float32) for _ in range(4)]
    bank = memory_bank.build_bank(descriptors, fraction=0.5, max_size=100)
    assert bank.shape == (100, 33)
    stacked = np.concatenate(descriptors)
    assert all((stacked == row).all(axis=1).any() for row in bank), "bank rows are training rows"
    query = rng.random((50, 33)).astype(np.float32)
    brute = np.sqrt(((query[:, None, :].astype(np.float64) - bank[None]) ** 2).sum(-1)).min(axis=1)
    assert_close(memory_bank.MemoryBank(bank).distances(query), brute, **FLOAT32_SAME_MATH, what="distances")


def _cloud(seed):
    rng = np.random.default_rng(seed)
    u, v = rng.uniform(-0.01, 0.01, (2, 600))
    return np.column_stack([u, v, 0.4 + 3 * u * v]).astype(np.float32)


def test_scoring_round_trip_through_a_run_folder(tmp_path):
    settings = geometric.GeometricSettings(s=0.0006)
    geo = geometric.GeometricScore.fit([_cloud(0), _cloud(1)], settings, fraction=0.2)
    f = fusion.fit_fusion(np.ones(600) + np.arange(600) / 600, geo(_cloud(2)))
    scoring.save_scoring(tmp_path, geo, f)
    loaded = scoring.load_scoring(tmp_path, "fused")
    student = np.linspace(0, 1, 600).astype(np.float32)
    assert_close(loaded(_cloud(3), student), scoring.Scoring("fused", geo, f)(_cloud(3), student), **EXACT)
    assert scoring.load_scoring(tmp_path, "student")(_cloud(3), student) is not None
    assert_close(scoring.load_scoring(tmp_path, "student")(_cloud(3), student), student, **EXACT)


def test_the_geometric_score_runs_with_one_blas_thread(monkeypatch):
    # BLAS threads woken here kept spinning into the next scan's numba network (st3d_edge.blas_threads)
    import threadpoolctl

    settings = geometric.GeometricSettings(s=0.0006)
    geo = geometric.GeometricScore.fit([_cloud(0), _cloud(1)], settings, fraction=0.2)
    seen = []
    describe = geometric.describe
    monkeypatch.setattr(
        geometric, "describe", lambda *a: seen.append(threadpoolctl.threadpool_info()) or describe(*a)
    )
    geo(_cloud(2))
    blas = [pool["num_threads"] for pool in seen[0] if pool["user_api"] == "blas"]
    assert blas and all(threads == 1 for threads in blas), seen[0]


def test_a_run_without_a_bank_or_with_a_bad_one_is_one_line(tmp_path):
    with pytest.raises(St3dError, match="train it again"):
        scoring.load_scoring(tmp_path, "fused")
    folder = tmp_path / scoring.FOLDER
    folder.mkdir()
    np.save(folder / geometric.BANK_FILE, np.zeros((4, 7), np.float32))
    (folder / geometric.SETTINGS_FILE).write_text('{"s": 0.001}')
    with pytest.raises(St3dError, match="33-bin"):
        scoring.load_scoring(tmp_path, "fused")


def test_tail_standardisation_scales_by_the_upper_tail_of_the_good_points():
    rng = np.random.default_rng(2)
    st, geo = rng.exponential(1.0, 20000), rng.normal(10.0, 1.0, 20000)
    f = fusion.fit_fusion(st, geo, weights=(0.25, 1.0))
    assert f.student_location == pytest.approx(np.median(st)) and f.geometric_location == pytest.approx(
        10.0, abs=0.05
    )
    assert f.student_scale == pytest.approx(np.quantile(st, 0.999) - np.median(st))
    assert f.student_weight == 0.25 and f.geometric_weight == 1.0
    # a good point at the 99.9th percentile of both scores sits at 0.25 + 1
    top = f(np.array([np.quantile(st, 0.999)]), np.array([np.quantile(geo, 0.999)]))
    assert_close(top, [1.25], rtol=1e-5, atol=0.0, what="fused tail point")


def test_an_approximate_bank_query_is_within_its_factor_and_exact_by_default():
    rng = np.random.default_rng(4)
    bank = memory_bank.MemoryBank(rng.random((3000, 33)).astype(np.float32))
    query = rng.random((2000, 33)).astype(np.float32)
    brute = np.sqrt(((query[:, None].astype(np.float64) - bank.bank[None]) ** 2).sum(axis=2)).min(axis=1)
    assert_close(bank.distances(query), brute, **FLOAT32_SAME_MATH, what="exact by default")
    loose = bank.distances(query, eps=1.0).astype(np.float64)
    assert np.all(loose >= brute * (1 - 1e-6)) and np.all(loose <= 2.0 * brute * (1 + 1e-6))
    assert np.any(loose > brute * (1 + 1e-6))  # this bank is one where the search does cut corners


def test_the_geometric_score_queries_with_its_settings_eps(tmp_path, monkeypatch):
    seen = []
    distances = memory_bank.MemoryBank.distances
    monkeypatch.setattr(
        memory_bank.MemoryBank,
        "distances",
        lambda self, d, eps=0.0: seen.append(eps) or distances(self, d, eps),
    )
    settings = geometric.GeometricSettings(s=0.0006, bank_eps=0.5)
    geo = geometric.GeometricScore.fit([_cloud(0), _cloud(1)], settings, fraction=0.2)
    geo(_cloud(2))
    assert seen == [0.5]
    loaded = geometric.GeometricScore.load(geo.save(tmp_path / "geo"))
    assert loaded.settings.bank_eps == 0.5
    (tmp_path / "geo" / geometric.SETTINGS_FILE).write_text('{"s": 0.001}')  # a run from before the field
    assert geometric.GeometricScore.load(tmp_path / "geo").settings.bank_eps == geometric.BANK_EPS


@pytest.mark.parametrize("eps", [-0.1, float("nan"), True, "1"])
def test_a_bad_bank_eps_is_one_line(tmp_path, eps):
    with pytest.raises(St3dError, match="bank_eps must be a number >= 0"):
        geometric.GeometricSettings(s=0.001, bank_eps=eps).check(tmp_path / "geometric.json")


def test_the_normals_solver_is_a_setting_the_descriptors_follow(tmp_path, monkeypatch):
    from st3d_edge.geometry import eigen3

    seen = []
    solve = eigen3.smallest_eigenvectors
    monkeypatch.setattr(
        eigen3, "smallest_eigenvectors", lambda cov, solver: seen.append(solver) or solve(cov, solver)
    )
    for solver in eigen3.SOLVERS:
        geometric.describe(_cloud(0), geometric.GeometricSettings(s=0.0006, normals=solver))
    assert seen == list(eigen3.SOLVERS)
    settings = geometric.GeometricSettings(s=0.0006, normals="lapack")
    geo = geometric.GeometricScore.fit([_cloud(0), _cloud(1)], settings, fraction=0.2)
    assert geometric.GeometricScore.load(geo.save(tmp_path / "geo")).settings.normals == "lapack"
    (tmp_path / "geo" / geometric.SETTINGS_FILE).write_text('{"s": 0.001}')  # a run from before the field
    assert geometric.GeometricScore.load(tmp_path / "geo").settings.normals == geometric.NORMALS


def test_a_bad_normals_solver_is_one_line(tmp_path):
    with pytest.raises(St3dError, match="normals must be one of closed-form, lapack, got 'qr'"):
        geometric.GeometricSettings(s=0.001, normals="qr").check(tmp_path / "geometric.json")
