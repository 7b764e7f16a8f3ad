"""The edge pipeline against an obvious reference assembled from loops and brute force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from st3d_edge.errors import St3dError
from st3d_edge.geometry.fps import fps_exact
from st3d_edge.geometry.smoothing import IMAGE_SCORE_NEIGHBOURS
from st3d_edge.runtime.backends import OnnxRuntimeBackend
from st3d_edge.runtime.geometry_backend import CpuGeometry
from st3d_edge.runtime.pipeline import ScanScorer, bundle_thresholds, verdict_for
from tests.helpers import EXACT, FLOAT32_DIFFERENT_KERNELS, assert_close
from tests.runtime_fixtures import (
    ToyBundle,
    organized_cloud,
    toy_scan,
    toy_scores_reference,
    write_toy_scorer,
)

K = 10


def _knn_reference(points: np.ndarray, k: int) -> np.ndarray:
    d = ((points[:, None, :].astype(np.float64) - points[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, -1.0)  # the point itself first
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def _idw_reference(samples, scores, queries, neighbours=4, power=2.0):
    out = np.empty(len(queries))
    for i, q in enumerate(queries.astype(np.float64)):
        d = np.sqrt(((samples - q) ** 2).sum(1))
        near = np.argsort(d, kind="stable")[:neighbours]
        if d[near[0]] == 0.0:  # a sampled point keeps its own score
            out[i] = scores[near[0]]
            continue
        w = 1.0 / d[near] ** power
        out[i] = (w * scores[near]).sum() / w.sum()
    return out


def _image_score_reference(scores, knn, neighbours=IMAGE_SCORE_NEIGHBOURS):
    return max(float(np.mean(scores[knn[i, :neighbours]])) for i in range(len(knn)))


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return OnnxRuntimeBackend(write_toy_scorer(tmp_path_factory.mktemp("m") / "m.onnx", k=K), threads=1)


def test_pipeline_matches_the_reference(backend):
    scan = toy_scan(organized_cloud(20, 24, seed=1), Path("part/xyz/000.tiff"))
    bundle = ToyBundle(n=120, k=K, sampler="fps-exact", thresholds={"image": 0.01, "pixel": 0.02})
    result = ScanScorer(bundle, backend, CpuGeometry(workers=1)).score(scan)

    idx = fps_exact(scan.points, 120)
    samples = scan.points[idx]
    knn = _knn_reference(samples, K)
    scores = toy_scores_reference(samples, knn)
    filled = _idw_reference(samples.astype(np.float64), scores.astype(np.float64), scan.points)
    expected_map = np.zeros(scan.valid.shape)
    expected_map[scan.valid] = filled  # valid pixels are row-major, like scan.points

    assert result.anomaly_map.dtype == np.float32 and result.anomaly_map.shape == (20, 24)
    assert_close(result.anomaly_map, expected_map, **FLOAT32_DIFFERENT_KERNELS, what="anomaly map")
    assert_close(result.anomaly_map[~scan.valid], np.zeros((~scan.valid).sum()), **EXACT, what="invalid")
    image_score = _image_score_reference(scores, knn)
    assert_close(result.image_score, image_score, **FLOAT32_DIFFERENT_KERNELS, what="image score")
    assert result.verdict == ("anomalous" if image_score > 0.01 else "good")
    assert result.anomalous_pixels == int((filled > 0.02).sum())
    assert result.valid_points == int(scan.valid.sum()) and result.sampled_points == 120
    assert set(result.ms) == {"sample", "knn", "inference", "fill", "image_score"}
    record = result.record()
    assert record["file"].endswith("000.tiff") and record["verdict"] == result.verdict


def test_image_score_uses_the_bundles_neighbour_count(backend):
    scan = toy_scan(organized_cloud(20, 24, seed=3))
    default = ScanScorer(ToyBundle(n=120, k=K, sampler="fps-exact"), backend, CpuGeometry(workers=1))
    bundle = ToyBundle(n=120, k=K, sampler="fps-exact", image_score={"neighbours": 3})
    scorer = ScanScorer(bundle, backend, CpuGeometry(workers=1))
    assert default.image_neighbours == IMAGE_SCORE_NEIGHBOURS and scorer.image_neighbours == 3
    result = scorer.score(scan)

    samples = scan.points[fps_exact(scan.points, 120)]
    knn = _knn_reference(samples, K)
    expected = _image_score_reference(toy_scores_reference(samples, knn), knn, neighbours=3)
    assert_close(result.image_score, expected, **FLOAT32_DIFFERENT_KERNELS, what="image score")


@pytest.mark.parametrize("bad", [0, -2, 2.5, "8", True])
def test_a_bad_neighbour_count_in_the_manifest_is_a_one_line_error(backend, bad):
    bundle = ToyBundle(n=64, k=K, image_score={"neighbours": bad})
    with pytest.raises(St3dError, match=r"image_score.neighbours must be a positive integer"):
        ScanScorer(bundle, backend, CpuGeometry(workers=1))


def test_fewer_valid_points_than_n_uses_them_all(backend):
    scan = toy_scan(organized_cloud(8, 9, seed=2))
    result = ScanScorer(ToyBundle(n=10_000, k=K), backend, CpuGeometry(workers=1)).score(scan)
    assert result.sampled_points == result.valid_points == int(scan.valid.sum())
    assert np.isfinite(result.anomaly_map).all()


def test_almost_empty_scan_is_a_one_line_error(backend):
    xyz = np.zeros((6, 6, 3), dtype=np.float32)
    xyz[1, :5] = np.random.default_rng(0).random((5, 3)) + 0.1  # 5 valid points, k + 1 = 11 needed
    scan = toy_scan(xyz, Path("empty/000.tiff"))
    with pytest.raises(St3dError, match=r"empty/000.tiff: only 5 valid points; .* k \+ 1 = 11"):
        ScanScorer(ToyBundle(n=64, k=K), backend, CpuGeometry(workers=1)).score(scan)


class _ProfiledBackend:
    """The toy backend with an engine profile's smallest n, as TensorRTBackend has."""

    name = "tensorrt"

    def __init__(self, inner, min_n: int) -> None:
        self.inner, self.min_n = inner, min_n

    def run(self, points, knn):
        assert len(knn) >= self.min_n, "a shape below the profile reached the backend"
        return self.inner.run(points, knn)


def test_scan_below_the_engine_profile_minimum_is_a_one_line_error(backend):
    scan = toy_scan(organized_cloud(8, 9, seed=2), Path("small/000.tiff"))
    valid = int(scan.valid.sum())
    scorer = ScanScorer(ToyBundle(n=64, k=K), _ProfiledBackend(backend, valid + 1), CpuGeometry(workers=1))
    with pytest.raises(
        St3dError, match=rf"small/000.tiff: only {valid} valid points; .* at least {valid + 1}"
    ):
        scorer.score(scan)
    ok = ScanScorer(ToyBundle(n=64, k=K), _ProfiledBackend(backend, min(64, valid)), CpuGeometry(workers=1))
    assert ok.score(scan).sampled_points == min(64, valid)


def test_thresholds_and_verdicts():
    assert bundle_thresholds(ToyBundle(1, 1, thresholds={"image": 2, "pixel": 1.5})) == (2.0, 1.5)
    assert bundle_thresholds(ToyBundle(1, 1)) == (None, None)
    assert verdict_for(3.0, 2.0) == "anomalous"
    assert verdict_for(2.0, 2.0) == "good"
    assert verdict_for(2.0, None) == "unknown"


def test_fused_scoring_fuses_the_graph_output_with_the_geometric_score(backend):
    from st3d_edge.calibration.fusion import Fusion
    from st3d_edge.calibration.geometric import GeometricScore, GeometricSettings
    from st3d_edge.calibration.scoring import Scoring

    scan = toy_scan(organized_cloud(20, 24, seed=2), Path("part/xyz/001.tiff"))
    good = toy_scan(organized_cloud(20, 24, seed=3, bump=False)).points
    # the exact bank query and LAPACK's normals: the reference below is the brute-force nearest
    # distance to fpfh_reference's descriptors (on this regular lattice many pairs are exact
    # source/target ties, which normals equal to 1e-15 can tip either way)
    settings = GeometricSettings(s=0.05, bank_eps=0.0, normals="lapack")
    geometric = GeometricScore.fit([good], settings, fraction=0.5)
    fusion = Fusion(0.1, 0.5, 30.0, 8.0, 1.0, 0.7)
    bundle = ToyBundle(n=120, k=K, sampler="fps-exact")
    result = ScanScorer(bundle, backend, CpuGeometry(workers=1), Scoring("fused", geometric, fusion)).score(
        scan
    )

    samples = scan.points[fps_exact(scan.points, 120)]
    knn = _knn_reference(samples, K)
    toy = toy_scores_reference(samples, knn).astype(np.float64)
    distances = (_fpfh_slow(samples)[:, None, :] - geometric.bank.bank[None]) ** 2
    geo = np.sqrt(distances.sum(-1).min(axis=1))
    fused = 1.0 * (toy - 0.1) / 0.5 + 0.7 * (geo - 30.0) / 8.0
    filled = _idw_reference(samples.astype(np.float64), fused, scan.points)
    assert_close(result.anomaly_map[scan.valid], filled, **FLOAT32_DIFFERENT_KERNELS, what="fused map")
    assert_close(
        result.image_score, _image_score_reference(fused, knn), **FLOAT32_DIFFERENT_KERNELS, what="image"
    )
    assert "geometric" in result.ms


def _fpfh_slow(points):
    from st3d_edge.geometry.fpfh import fpfh_reference

    return fpfh_reference(points, 2.0 * 0.05, 5.0 * 0.05).astype(np.float64)
