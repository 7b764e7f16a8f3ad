from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from st3d_edge.calibration.scoring import load_scoring
from st3d_edge.calibration.thresholds import load_thresholds, pixel_threshold
from st3d_edge.data.mvtec import read_scan, scan_paths
from st3d_edge.errors import St3dError
from st3d_edge.geometry.knn import knn_indices
from st3d_edge.geometry.sampling import sample_indices
from st3d_edge.geometry.scale import scale_s
from st3d_edge.geometry.smoothing import image_score
from st3d_edge.model.network import reference_forward
from st3d_edge.model.scorer import Scorer
from st3d_edge.train.category_model import load_category
from st3d_edge.train.checkpoint import load_checkpoint
from st3d_edge.train.common import RANDOM_TEACHER_STREAM, build_net
from st3d_edge.train.pretrain import pretrain
from st3d_edge.train.student import train_category
from tests.helpers import EXACT, FLOAT32_SAME_MATH, FLOAT64_SOLVER, assert_close
from tests.train_data import CATEGORY, tiny_preset, write_tiny_dataset


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("student")
    data = write_tiny_dataset(base / "data")
    teacher = pretrain(base / "runs" / "teacher", tiny_preset(), progress=False).run_dir
    result = train_category(
        base / "runs" / CATEGORY,
        tiny_preset(2),
        data_root=data,
        category=CATEGORY,
        teacher_dir=teacher,
        progress=False,
    )
    return data, teacher, result


def _clouds(data, split, preset):
    """Each scan reduced and given its kNN graph from scratch (no cache)."""
    out = []
    for path in scan_paths(data, CATEGORY, split):
        raw = read_scan(path).points
        pts = raw[sample_indices(raw, preset.model.n, preset.model.sampler)]
        out.append((pts, knn_indices(pts, preset.model.k)))
    return out


def _torch(points, knn, s):
    return torch.from_numpy(points / np.float32(s)), torch.from_numpy(knn.astype(np.int64))


def test_run_folder(setup):
    _, teacher_dir, result = setup
    run = result.run_dir
    names = {p.name for p in run.iterdir()}
    assert {
        "config.json",
        "student.pt",
        "teacher.pt",
        "last.pt",
        "metrics.jsonl",
        "stats",
        "thresholds.json",
    } <= names
    assert sorted(p.name for p in (run / "stats").iterdir()) == ["mu.npy", "scale.json", "sigma.npy"]
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    best = min(records, key=lambda r: r["val_loss"])
    assert load_checkpoint(run / "student.pt")["epoch"] == best["epoch"] == result.best_epoch
    copied = load_checkpoint(run / "teacher.pt")["model"]
    for name, value in load_checkpoint(teacher_dir / "teacher.pt")["model"].items():
        assert_close(copied[name].numpy(), value.numpy(), **EXACT, what=f"teacher copy {name}")


def test_statistics_match_stacked_reference(setup):
    data, _, result = setup
    teacher, _, s, mu, sigma, preset = load_category(result.run_dir)
    clouds = _clouds(data, "train", preset)
    assert_close(s, scale_s(clouds), **FLOAT64_SOLVER, what="s")
    with torch.no_grad():
        stacked = np.concatenate([reference_forward(teacher, *_torch(p, k, s)).numpy() for p, k in clouds])
    assert_close(mu, stacked.astype(np.float64).mean(0), **FLOAT32_SAME_MATH, what="mu")
    assert_close(sigma, stacked.astype(np.float64).std(0), **FLOAT32_SAME_MATH, what="sigma")


def test_validation_loss_and_thresholds_match_reference(setup):
    data, _, result = setup
    teacher, student, s, mu, sigma, preset = load_category(result.run_dir)
    mu_t, sigma_t = torch.from_numpy(mu), torch.from_numpy(sigma)
    scorer = Scorer(teacher, student, s, mu, sigma).eval()
    losses, scores = [], []
    with torch.no_grad():
        for points, knn in _clouds(data, "validation", preset):
            p, k = _torch(points, knn, s)
            diff = reference_forward(student, p, k) - (reference_forward(teacher, p, k) - mu_t) / sigma_t
            losses.append(float((diff**2).sum(1).mean()))  # eq. (5), obvious formulation
            point_scores = scorer(torch.from_numpy(points), torch.from_numpy(knn.astype(np.int64))).numpy()
            assert_close(point_scores, (diff**2).sum(1).sqrt().numpy(), **FLOAT32_SAME_MATH, what="eq. 6")
            scores.append(point_scores)
    assert_close(result.best_val, np.mean(losses), **FLOAT32_SAME_MATH, what="best validation loss")
    saved = load_thresholds(result.run_dir / "thresholds.json")
    assert saved.pixel_fpr == 0.01 and saved.validation_scans == 2
    # the shipped scoring fuses the student's error with the geometric score, standardised on
    # these very validation points
    assert preset.model.scoring == "fused"
    geometric = load_scoring(result.run_dir, "fused").geometric
    clouds = _clouds(data, "validation", preset)
    geo = [geometric(points) for points, _ in clouds]
    st, g = np.concatenate(scores).astype(np.float64), np.concatenate(geo).astype(np.float64)
    # tail standardisation (median, 99.9th percentile - median), weights 1 and 1 (fusion.DEFAULT_WEIGHTS)
    st_loc, g_loc = np.median(st), np.median(g)
    st_scale, g_scale = np.quantile(st, 0.999) - st_loc, np.quantile(g, 0.999) - g_loc
    fused = [(sc - st_loc) / st_scale + (gs - g_loc) / g_scale for sc, gs in zip(scores, geo, strict=True)]
    # the fused score's image score is the highest 8-neighbour mean (calibration.scoring.IMAGE_NEIGHBOURS)
    images = [image_score(p, f, k, neighbours=8) for (p, k), f in zip(clouds, fused, strict=True)]
    assert_close(saved.pixel, pixel_threshold(np.concatenate(fused), 0.01), **FLOAT32_SAME_MATH, what="pixel")
    assert_close(saved.image, max(images), **FLOAT32_SAME_MATH, what="image")
    assert saved.image_neighbours == 8


def test_resume_equals_uninterrupted_run(setup, tmp_path):
    torch.set_num_threads(1)
    data, teacher, result = setup
    run = tmp_path / CATEGORY
    train_category(
        run, tiny_preset(1), data_root=data, category=CATEGORY, teacher_dir=teacher, progress=False
    )
    train_category(
        run,
        tiny_preset(2),
        data_root=data,
        category=CATEGORY,
        teacher_dir=teacher,
        resume=True,
        progress=False,
    )
    whole = load_checkpoint(result.run_dir / "last.pt")["modules"]["student"]
    resumed = load_checkpoint(run / "last.pt")["modules"]["student"]
    for name, value in whole.items():
        assert_close(resumed[name].numpy(), value.numpy(), **EXACT, what=name)
    assert load_thresholds(run / "thresholds.json") == load_thresholds(result.run_dir / "thresholds.json")


def test_random_teacher_ablation(setup, tmp_path):
    data, _, _ = setup
    preset = tiny_preset(1)
    preset.student.random_teacher = True
    run = tmp_path / "random"
    train_category(run, preset, data_root=data, category=CATEGORY, progress=False)
    expected = build_net(preset.model, seed=preset.student.seed + RANDOM_TEACHER_STREAM).state_dict()
    saved = load_checkpoint(run / "teacher.pt")
    assert saved["source"] == "random"
    for name, value in expected.items():
        assert_close(saved["model"][name].numpy(), value.numpy(), **EXACT, what=name)
    assert json.loads((run / "config.json").read_text())["student"]["random_teacher"] is True


def test_teacher_with_other_settings_is_refused(setup, tmp_path):
    data, teacher, _ = setup
    preset = tiny_preset(1)
    preset.model.d = 32
    with pytest.raises(
        St3dError, match=r"config\.json: teacher was pretrained with d=16, this run asks for 32"
    ):
        train_category(
            tmp_path / "x", preset, data_root=data, category=CATEGORY, teacher_dir=teacher, progress=False
        )


def test_load_category_errors(setup, tmp_path):
    _, teacher, _ = setup
    (tmp_path / "empty").mkdir()
    with pytest.raises(St3dError, match=r"empty: has no trained model \(config\.json, student\.pt"):
        load_category(tmp_path / "empty")
    with pytest.raises(St3dError, match="no such run folder"):
        load_category(tmp_path / "missing")
    with pytest.raises(St3dError, match="has no trained model"):
        load_category(teacher)


def test_missing_splits_are_user_errors(setup, tmp_path):
    data, teacher, _ = setup
    with pytest.raises(St3dError, match="nope: category 'nope' not found"):
        train_category(tmp_path / "x", tiny_preset(1), data_root=data, category="nope", teacher_dir=teacher)


def test_only_good_scans_train_and_calibrate(setup, tmp_path):
    import shutil

    from st3d_edge.data.mvtec import good_scan_paths

    data, _, _ = setup
    copy = tmp_path / "data"
    shutil.copytree(data / CATEGORY, copy / CATEGORY)
    (copy / CATEGORY / "train" / "dent" / "xyz").mkdir(parents=True)
    defect = next(p for p in scan_paths(copy, CATEGORY, "test") if p.parent.parent.name == "dent")
    shutil.copy(defect, copy / CATEGORY / "train" / "dent" / "xyz" / "000.tiff")
    good = good_scan_paths(copy, CATEGORY, "train")
    assert len(scan_paths(copy, CATEGORY, "train")) == len(good) + 1 == 4
    assert all(p.parent.parent.name == "good" for p in good)
