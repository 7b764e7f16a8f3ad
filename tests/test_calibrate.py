"""`st3d-edge calibrate` through the deployed pipeline (toy bundle), and the threshold rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from st3d_edge.calibration.deployed import f1_threshold
from st3d_edge.calibration.thresholds import threshold_at_fpr
from st3d_edge.cli import app
from st3d_edge.runtime.bundle import load_bundle
from tests.runtime_fixtures import organized_cloud
from tests.test_infer_cli import make_bundle


def _invoke(*args):
    return CliRunner().invoke(app, ["calibrate", *map(str, args)])


@pytest.fixture()
def lot(tmp_path):
    """A toy bundle with an image threshold that flags everything, good and bumped scans, masks."""
    bundle = make_bundle(tmp_path / "bundle", thresholds={"image": 0.0, "pixel": 0.0})
    for i in range(4):
        tifffile.imwrite(tmp_path / "good" / f"g{i}.tiff", organized_cloud(16, 18, seed=10 + i, bump=False))
    (tmp_path / "masks").mkdir()
    for i in range(3):
        xyz = organized_cloud(16, 18, seed=20 + i, bump=True)
        tifffile.imwrite(tmp_path / "bad" / f"b{i}.tiff", xyz)
        ys, xs = np.mgrid[0:16, 0:18]
        mask = ((xs / 18 - 0.7) ** 2 + (ys / 16 - 0.3) ** 2) < 0.01
        Image.fromarray((mask * 255).astype(np.uint8)).save(tmp_path / "masks" / f"b{i}.png")
    return tmp_path, bundle


@pytest.fixture(autouse=True)
def _folders(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()


def _verdicts(bundle, folder):
    from st3d_edge import Detector

    det = Detector(bundle, backend="onnxruntime", geometry="cpu")
    return [det(p) for p in sorted(folder.glob("*.tiff"))]


def test_f1_threshold_by_hand():
    # t = 0.2 flags 0.25, 0.3, 0.5: F1 = 2*2 / (3 + 2) = 0.8, better than every other cut
    assert f1_threshold(np.array([0.1, 0.2, 0.3]), np.array([0.25, 0.5])) == 0.2
    # a clean separation: the highest threshold that still flags every defective scan
    assert f1_threshold(np.array([0.1, 0.2]), np.array([0.6, 0.7])) == 0.2


def test_good_scans_only_sets_thresholds_and_verdicts_change(lot):
    tmp_path, bundle = lot
    assert {r.verdict for r in _verdicts(bundle, tmp_path / "good")} == {"anomalous"}
    res = _invoke(bundle, "--good", tmp_path / "good", "--backend", "onnxruntime", "--geometry", "cpu")
    assert res.exit_code == 0, res.output
    assert "image threshold" in res.stdout and "(was 0)" in res.stdout
    results = _verdicts(bundle, tmp_path / "good")
    assert {r.verdict for r in results} == {"good"}  # fpr 0: the largest good image score
    thresholds = load_bundle(bundle).thresholds  # the bundle still verifies
    assert thresholds["image"] == max(r.image_score for r in results)
    points = np.concatenate([r.point_scores for r in results])
    assert thresholds["pixel"] == threshold_at_fpr(points, 0.01)
    assert thresholds["validation_scans"] == 4 and thresholds["validation_points"] == points.size


def test_defective_scans_choose_f1_and_report_rates(lot):
    tmp_path, bundle = lot
    args = ["--good", tmp_path / "good", "--defective", tmp_path / "bad", "--masks", tmp_path / "masks"]
    res = _invoke(bundle, *args, "--geometry", "cpu")
    assert res.exit_code == 0, res.output
    assert "max F1" in res.stdout and "detection rate" in res.stdout and "(masks)" in res.stdout
    image = load_bundle(bundle).thresholds["image"]
    good = _verdicts(bundle, tmp_path / "good")
    bad = _verdicts(bundle, tmp_path / "bad")
    expected = f1_threshold(np.array([r.image_score for r in good]), np.array([r.image_score for r in bad]))
    assert image == expected
    rate = float(np.mean([r.verdict == "anomalous" for r in bad]))
    assert f"detection rate {rate:.4f} of 3 defective scans" in res.stdout


def test_the_api_reports_without_writing(lot):
    import st3d_edge

    tmp_path, bundle = lot
    before = (bundle / "manifest.json").read_text()
    calibration, old = st3d_edge.calibrate_bundle(bundle, [tmp_path / "good"], pixel_fpr=0.1, write=False)
    assert old["image"] == 0.0 and calibration.good_scans == 4 and calibration.image_rule == "fpr"
    assert calibration.pixel_false_positive_rate <= 0.1
    assert (bundle / "manifest.json").read_text() == before


def test_given_threshold_dry_run_and_usage_errors(lot):
    tmp_path, bundle = lot
    before = (bundle / "manifest.json").read_text()
    res = _invoke(bundle, "--good", tmp_path / "good", "--image-threshold", "7.5", "--dry-run")
    assert res.exit_code == 0 and "image threshold 7.5 (was 0) (as given)" in res.stdout
    assert (bundle / "manifest.json").read_text() == before
    res = _invoke(bundle, "--good", tmp_path / "good", "--image-threshold", "7.5")
    assert json.loads((bundle / "manifest.json").read_text())["thresholds"]["image"] == 7.5
    res = _invoke(bundle, "--good", tmp_path / "good", "--image-fpr", "0.1", "--image-threshold", "1")
    assert res.exit_code == 2 and "not both" in " ".join(res.output.replace("│", " ").split())
    res = _invoke(bundle, "--good", tmp_path / "good", "--defective", tmp_path / "bad", "--masks", tmp_path)
    assert res.exit_code == 2 and "no mask b0.png or .npy in" in res.stderr
    res = _invoke(bundle, "--good", tmp_path / "good", "--image-threshold", "nan")
    assert res.exit_code == 2 and "finite" in res.output
    res = _invoke(tmp_path / "nowhere", "--good", tmp_path / "good")
    assert res.exit_code == 2 and "bundle folder not found" in res.stderr
