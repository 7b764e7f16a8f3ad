"""The evaluation runner and `st3d-edge evaluate` on a tiny synthetic dataset and a tiny trained run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.data.mvtec import read_scan, scan_paths
from st3d_edge.data.synthetic import DEFECTS
from st3d_edge.evaluation.maps import MAP_SIGMA, blur_map, scores_to_map
from st3d_edge.evaluation.pro import LIMITS, au_pro
from st3d_edge.evaluation.runner import evaluate_category, evaluate_scans
from tests.helpers import EXACT, FLOAT32_SAME_MATH, assert_close

SIZE = (40, 40)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two synthetic categories; only the first gets a (1-epoch, random-teacher) trained model."""
    import torch

    from st3d_edge.config import get_preset
    from st3d_edge.data.synthetic import write_dataset
    from st3d_edge.train.student import train_category

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("eval")
    data = write_dataset(
        root / "data",
        categories=["tire", "foam"],
        train=2,
        validation=1,
        test_good=2,
        test_defect=1,
        size=SIZE,
        progress=False,
        defects=DEFECTS[:2],
    )
    preset = get_preset("tiny")
    preset.model.n = 128
    preset.student.epochs = 1
    preset.student.random_teacher = True
    train_category(root / "runs" / "tire", preset, data_root=data, category="tire", progress=False)
    return data, root / "runs"


def test_sampled_pixels_keep_their_scores():
    pixels = np.array([[0, 0], [3, 4], [5, 1]], dtype=np.int32)
    scores = np.array([0.5, 2.0, 1.25])
    anomaly_map = scores_to_map((6, 7), pixels, scores)
    assert anomaly_map.dtype == np.float32 and anomaly_map.shape == (6, 7)
    assert_close(anomaly_map[pixels[:, 0], pixels[:, 1]], scores, **EXACT, what="sampled pixels")
    assert anomaly_map.min() >= 0.5 and anomaly_map.max() <= 2.0  # maximum principle


def direct_blur(anomaly_map: np.ndarray, sigma_px: float) -> np.ndarray:
    """The slow reference: one 2D Gaussian kernel (radius 4 sigma, as scipy truncates), edge
    values repeated beyond the border, summed pixel by pixel."""
    radius = int(4.0 * sigma_px + 0.5)
    offsets = np.arange(-radius, radius + 1)
    line = np.exp(-0.5 * (offsets / sigma_px) ** 2)
    kernel = np.outer(line, line) / line.sum() ** 2
    padded = np.pad(anomaly_map.astype(np.float64), radius, mode="edge")
    out = np.zeros(anomaly_map.shape)
    for r in range(anomaly_map.shape[0]):
        for c in range(anomaly_map.shape[1]):
            out[r, c] = (padded[r : r + 2 * radius + 1, c : c + 2 * radius + 1] * kernel).sum()
    return out


@pytest.mark.parametrize("sigma", [1.0, MAP_SIGMA, 9.5])
def test_the_map_blur_is_a_gaussian_scaled_to_the_maps_size(sigma):
    rng = np.random.default_rng(3)
    anomaly_map = rng.random((30, 45))
    blurred = blur_map(anomaly_map, sigma)
    # sigma is in px of a 224-px map: this one's larger side is 45 px
    assert_close(blurred, direct_blur(anomaly_map, sigma * 45 / 224), rtol=1e-12, atol=1e-12, what="blur")
    assert blur_map(anomaly_map, 0.0) is anomaly_map
    with pytest.raises(ValueError, match="sigma"):
        blur_map(anomaly_map, -1.0)


def test_maps_are_blurred_before_they_are_written_and_measured(tiny, tmp_path):
    data, runs = tiny
    run = runs / "tire"
    raw = evaluate_category(data, "tire", run, maps_dir=tmp_path / "raw", map_sigma=0, progress=False)
    blurred = evaluate_category(data, "tire", run, maps_dir=tmp_path / "blurred", progress=False)
    assert (raw.map_sigma, blurred.map_sigma) == (0, MAP_SIGMA)
    written = sorted((tmp_path / "raw").rglob("*.tiff"))
    assert len(written) == 4
    for path in written:
        again = tmp_path / "blurred" / path.relative_to(tmp_path / "raw")
        expected = blur_map(tifffile.imread(path), MAP_SIGMA)
        assert_close(tifffile.imread(again), expected, **EXACT, what=str(path.name))
        assert not np.array_equal(tifffile.imread(again), tifffile.imread(path))


def test_maps_on_disk_give_the_reported_metrics(tiny, tmp_path):
    data, runs = tiny
    maps_dir = tmp_path / "maps"
    result = evaluate_category(data, "tire", runs / "tire", maps_dir=maps_dir, progress=False)
    assert result.scans == 4 and result.defective == 2
    maps, gts = [], []
    for path in scan_paths(data, "tire", "test"):
        scan = read_scan(path)
        written = maps_dir / "tire" / "test" / (scan.defect or "good") / f"{scan.name}.tiff"
        anomaly_map = tifffile.imread(written)
        assert anomaly_map.dtype == np.float32 and anomaly_map.shape == SIZE
        maps.append(anomaly_map)
        gts.append(scan.gt)
    for limit in LIMITS:
        assert_close(result.au_pro[limit], au_pro(maps, gts, limit), **FLOAT32_SAME_MATH, what=f"{limit}")
    assert 0.0 <= result.i_auroc <= 1.0
    assert result.infer_ms > 0 and result.peak_rss_mb > 0 and len(result.limit_curve) == 100


def test_an_oracle_scorer_is_rated_perfect_at_image_level(tiny):
    """Score every point by its ground truth: good scans score 0, defective ones 1 somewhere."""
    data, _ = tiny
    scans = [read_scan(p) for p in scan_paths(data, "foam", "test")]
    truth = {id(s.points): None if s.gt is None else s.gt[s.pixels[:, 0], s.pixels[:, 1]] for s in scans}

    def oracle(points):
        from st3d_edge.geometry.knn import knn_indices

        labels = truth[id(points)]
        scores = np.zeros(len(points)) if labels is None else labels.astype(float)
        return np.arange(len(points)), knn_indices(points, 4), scores

    result = evaluate_scans(scans, oracle, category="foam", method="oracle", progress=False)
    assert result.i_auroc == 1.0
    assert result.au_pro[0.3] > 0.9


def test_each_defect_type_is_measured_against_the_good_scans_alone(tiny):
    """An oracle for the first defect type only: that type is found, the other is not."""
    from st3d_edge.evaluation.report import format_defect_table, mean_result

    data, _ = tiny
    scans = [read_scan(p) for p in scan_paths(data, "foam", "test")]
    seen = {id(s.points): s.defect == DEFECTS[0] and s.gt[s.pixels[:, 0], s.pixels[:, 1]] for s in scans}

    def half_oracle(points):
        from st3d_edge.geometry.knn import knn_indices

        labels = seen[id(points)]
        scores = labels.astype(float) if labels is not False else np.zeros(len(points))
        return np.arange(len(points)), knn_indices(points, 4), scores

    result = evaluate_scans(scans, half_oracle, category="foam", method="oracle", progress=False)
    assert sorted(result.by_defect) == sorted(DEFECTS[:2])
    found, missed = result.by_defect[DEFECTS[0]], result.by_defect[DEFECTS[1]]
    assert found["i_auroc"] == 1.0 and found["au_pro"] > 0.9
    assert missed["i_auroc"] == 0.5 and missed["au_pro"] < 0.2
    # each row is the whole-category metric of the good scans plus that type
    only_found = evaluate_scans(
        [s for s in scans if s.defect in (None, DEFECTS[0])], half_oracle, category="foam", progress=False
    )
    assert only_found.by_defect == {}, "one defect type: no breakdown"
    assert found == {"au_pro": only_found.au_pro[0.3], "i_auroc": only_found.i_auroc}
    twice = mean_result([result, result])
    assert twice.by_defect == result.by_defect
    table = format_defect_table([result]).splitlines()
    assert table[1].split() == ["category", *sorted(DEFECTS[:2])] and table[3].startswith("foam")
    assert "1.000 / 1.000" in table[3] and "0.500" in table[3]
    assert format_defect_table([only_found]) == ""


def test_cli_writes_tables_maps_and_plot(tiny, tmp_path):
    data, runs = tiny
    out = tmp_path / "report"
    args = ["evaluate", "--data", str(data), "--category", "tire", "--workdir", str(runs), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "AU-PRO@0.3" in result.stdout and "mean" in result.stdout
    report = json.loads((out / "evaluation.json").read_text())
    assert [c["category"] for c in report["categories"]] == ["tire"]
    assert report["categories"][0]["map_sigma"] == MAP_SIGMA == report["mean"]["map_sigma"]
    assert set(report["mean"]["au_pro"]) == {f"{lim:g}" for lim in LIMITS}
    assert (out / "evaluation.csv").read_text().splitlines()[0].startswith("category,scans,AU-PRO@0.01")
    assert (out / "pro_vs_limit.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((out / "maps" / "tire" / "test").glob("*/*.tiff"))) == 4
    kinds = report["categories"][0]["by_defect"]
    assert sorted(kinds) == sorted(DEFECTS[:2]) and report["mean"]["by_defect"] == kinds
    below = result.stdout.split("by defect type", 1)[1]
    row = next(line for line in below.splitlines() if line.startswith("tire "))
    first = kinds[sorted(kinds)[0]]
    assert f"{first['au_pro']:.3f} / {first['i_auroc']:.3f}" in row


def test_cli_category_without_model_fails_clearly(tiny, tmp_path):
    data, runs = tiny
    args = ["evaluate", "--data", str(data), "--workdir", str(runs), "--out", str(tmp_path), "--no-maps"]
    only_missing = CliRunner().invoke(app, args + ["--category", "foam"])
    assert only_missing.exit_code == 2
    assert "foam" in only_missing.stderr and "train" in only_missing.stderr
    both = CliRunner().invoke(app, args)  # every category of the dataset: tire works, foam fails
    assert both.exit_code == 1, both.output
    assert "1 of 2 categories failed" in both.stderr
    assert "tire" in both.stdout
    assert not (tmp_path / "maps").exists()


def test_cli_refuses_a_missing_dataset(tmp_path):
    result = CliRunner().invoke(app, ["evaluate", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "dataset root not found" in result.stderr


def test_missing_torch_or_matplotlib_names_the_train_extra(tmp_path, monkeypatch):
    import sys

    from st3d_edge.errors import MissingExtraError
    from st3d_edge.evaluation.report import plot_pro_vs_limit
    from st3d_edge.evaluation.runner import ModelPointScorer

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(MissingExtraError, match=r"torch is not installed.*st3d-edge\[train\]"):
        ModelPointScorer(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingExtraError, match=r"matplotlib is not installed.*st3d-edge\[train\]"):
        plot_pro_vs_limit({}, tmp_path / "pro.png")


def test_image_neighbours_follow_the_runs_calibrated_thresholds(tmp_path):
    """A run calibrated with another neighbour count than today's is evaluated with its own count,
    the one its bundle ships; another scoring than the trained one, or no thresholds, take the
    scoring's current count."""
    from st3d_edge.calibration.scoring import IMAGE_NEIGHBOURS, Scoring
    from st3d_edge.calibration.thresholds import Thresholds, save_thresholds
    from st3d_edge.evaluation.runner import run_image_neighbours
    from st3d_edge.train.student import THRESHOLDS

    student = Scoring("student")
    assert run_image_neighbours(tmp_path, True, student) == IMAGE_NEIGHBOURS["student"]
    recorded = IMAGE_NEIGHBOURS["student"] + 3
    save_thresholds(tmp_path / THRESHOLDS, Thresholds(pixel=1.0, image=2.0, image_neighbours=recorded))
    assert run_image_neighbours(tmp_path, True, student) == recorded
    assert run_image_neighbours(tmp_path, False, student) == IMAGE_NEIGHBOURS["student"]


def test_evaluate_category_scores_images_with_the_runs_recorded_count(tiny, tmp_path, monkeypatch):
    """The wiring: a run whose thresholds were calibrated with another neighbour count than
    today's is evaluated with that count (the one its bundle ships)."""
    import shutil

    from st3d_edge.calibration.scoring import IMAGE_NEIGHBOURS
    from st3d_edge.calibration.thresholds import load_thresholds, save_thresholds
    from st3d_edge.evaluation import runner
    from st3d_edge.evaluation.runner import ModelPointScorer
    from st3d_edge.train.student import THRESHOLDS

    data, runs = tiny
    run = shutil.copytree(runs / "tire", tmp_path / "tire")
    thresholds = load_thresholds(run / THRESHOLDS)
    assert thresholds.image_neighbours == IMAGE_NEIGHBOURS["fused"]  # what training records now
    thresholds.image_neighbours = 1
    save_thresholds(run / THRESHOLDS, thresholds)
    assert ModelPointScorer(run).image_neighbours == 1
    assert ModelPointScorer(run, scoring="student").image_neighbours == IMAGE_NEIGHBOURS["student"]
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["image_neighbours"])
        return "result"

    monkeypatch.setattr(runner, "evaluate_scans", spy)
    assert evaluate_category(data, "tire", run, progress=False) == "result"
    assert seen == [1]
