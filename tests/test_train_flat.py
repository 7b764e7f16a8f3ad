"""Training from a flat folder of good scans (PLY only): train -> export -> infer, and the split."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.data.mvtec import read_scan
from st3d_edge.data.scanlist import split_validation
from st3d_edge.runtime import outputs
from tests.test_api_detector import _write_ply
from tests.train_data import CATEGORY, write_tiny_dataset

TINY = ["--preset", "tiny", "--device", "cpu", "--n", "128", "--epochs", "1", "--random-teacher"]


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def plys(tmp_path_factory):
    """The tiny dataset's good train and validation scans and one defective test scan as PLYs."""
    root = tmp_path_factory.mktemp("flat")
    data = write_tiny_dataset(root / "data") / CATEGORY
    good = root / "parts" / "good"
    good.mkdir(parents=True)
    tiffs = sorted((data / "train" / "good" / "xyz").glob("*.tiff"))
    tiffs += sorted((data / "validation" / "good" / "xyz").glob("*.tiff"))
    for i, tiff in enumerate(tiffs):
        _write_ply(good / f"{i:03d}.ply", read_scan(tiff).points)
    defect = read_scan(next((data / "test").glob("dent/xyz/*.tiff")))
    for folder in ("bad", "masks", "ok"):
        (root / folder).mkdir()
    _write_ply(root / "bad" / "test.ply", defect.points)
    np.save(root / "masks" / "test.npy", defect.gt[defect.valid])
    _write_ply(root / "ok" / "test_good.ply", read_scan(next((data / "test").glob("good/xyz/*.tiff"))).points)
    return root, good


def test_split_is_seeded_and_keeps_training_scans():
    paths = [f"{i}.ply" for i in range(10)]
    train, val = split_validation(paths, 0.3, seed=4)
    assert len(val) == 3 and sorted(train + val) == sorted(paths)
    assert split_validation(paths, 0.3, seed=4) == (train, val)
    assert split_validation(paths, 0.3, seed=5) != (train, val)
    assert len(split_validation(paths[:2], 0.9, seed=0)[0]) == 1


@pytest.fixture(scope="module")
def trained(plys, tmp_path_factory):
    torch.set_num_threads(1)
    root, good = plys
    work = tmp_path_factory.mktemp("runs")
    return work, _invoke("train", "--good", good, "--val-fraction", "0.4", "--workdir", work, *TINY)


def test_ply_only_train_export_infer(plys, trained, tmp_path):
    root, good = plys
    work, res = trained
    assert res.exit_code == 0, res.output
    run = work / "parts"  # the run is named after the folder holding good/
    job = json.loads((run / "config.json").read_text())["job"]
    assert job["good"] == [str(good)] and job["val_fraction"] == 0.4 and len(job["validation_scans"]) == 2
    assert (run / "thresholds.json").is_file()
    assert "cache scans (3)" in res.stderr  # the long silent stage at paper scale has a bar
    res = _invoke("export", "--category", "parts", "--workdir", work)
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    res = _invoke("infer", root / "bad" / "test.ply", "--category", "parts", "--workdir", work, "--out", out)
    assert res.exit_code == 0, res.output
    (record,) = outputs.read_results(out / outputs.RESULTS_NAME)
    assert record["outputs"] == {"ply": "test.ply"} and record["verdict"] in ("good", "anomalous")
    scores = outputs.read_ply(out / "test.ply")["score"]
    assert len(scores) == record["valid_points"] and np.isfinite(scores).all()


def test_evaluate_folders_of_plys_with_point_masks(plys, trained, tmp_path):
    root, _ = plys
    work, _ = trained
    args = ["--category", "parts", "--workdir", work, "--good", root / "ok", "--defective", root / "bad"]
    res = _invoke("evaluate", *args, "--masks", root / "masks", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    (row,) = json.loads((tmp_path / "evaluation.json").read_text())["categories"]
    assert row["scans"] == 2 and row["defective"] == 1 and 0.0 <= row["au_pro"]["0.3"] <= 1.0
    res = _invoke("evaluate", *args, "--masks", tmp_path)
    assert res.exit_code == 2 and "no mask test.png or .npy" in res.stderr


def test_point_maps_rate_a_perfect_scorer_one():
    from st3d_edge.evaluation.maps import point_map
    from st3d_edge.evaluation.pro import au_pro_at_limits, pro_curve

    rng = np.random.default_rng(0)
    points = rng.random((200, 3)).astype(np.float32)
    gt = rng.random(200) < 0.1
    idx = np.arange(200)
    anomaly_map, mask = point_map(points, idx, gt.astype(np.float64), gt)
    assert mask.shape == (1, 200) and mask[0, : gt.sum()].all() and not mask[0, gt.sum() :].any()
    fpr, pro = pro_curve([anomaly_map], [mask])
    assert au_pro_at_limits(fpr, pro, (0.3,))[0.3] == pytest.approx(1.0)


def test_api_with_explicit_validation_and_usage_errors(plys, tmp_path):
    import st3d_edge

    torch.set_num_threads(1)
    root, good = plys
    files = sorted(good.glob("*.ply"))
    result = st3d_edge.train_detector(
        good=files[:3],
        validation=files[3:],
        category="explicit",
        workdir=tmp_path,
        preset="tiny",
        n=128,
        epochs=1,
        random_teacher=True,
        device="cpu",
        progress=False,
        units="mm",
    )
    assert result.run_dir == tmp_path / "explicit" and result.thresholds.validation_scans == 2
    job = json.loads((result.run_dir / "config.json").read_text())["job"]
    assert job["units"] == "mm" and job["validation"] == [str(f) for f in files[3:]]
    assert result.s < 1e-4  # the PLYs hold metres (s about 1e-2); read as millimetres they shrink 1000 times
    res = _invoke("train", "--good", good, "--validation", files[0], "--workdir", tmp_path, *TINY)
    assert res.exit_code == 2 and "among both the training and the validation scans" in res.stderr
    res = _invoke("train", "--good", good, "--data", root, "--workdir", tmp_path, *TINY)
    assert res.exit_code == 2 and "either as --data DIR --category NAME" in res.stderr
    res = _invoke("train", "--good", tmp_path / "nowhere", "--workdir", tmp_path, *TINY)
    assert res.exit_code == 2 and "no such file or folder" in res.stderr


def test_evaluate_needs_data_or_folders(tmp_path):
    res = _invoke("evaluate", "--workdir", tmp_path)
    assert res.exit_code == 2 and "--data DIR (MVTec layout) or as --good DIR --defective DIR" in res.stderr
    res = _invoke("evaluate", "--workdir", tmp_path, "--good", tmp_path, "--category", "x")
    assert res.exit_code == 2 and "--good and --defective go together" in res.stderr
