"""The MVTec 3D-AD reader: layout, valid pixels, ground truth, and one-line errors for bad files."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tifffile
from PIL import Image

from st3d_edge.data import mvtec
from st3d_edge.errors import St3dError
from tests.helpers import EXACT, assert_close


def _xyz(rng, h=6, w=5):
    xyz = rng.uniform(-0.05, 0.05, (h, w, 3)).astype(np.float32)
    xyz[..., 2] += 0.4
    return xyz


def _write_sample(root, category, split, kind, name, xyz, gt=None):
    base = root / category / split / kind
    (base / "xyz").mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(base / "xyz" / f"{name}.tiff", xyz, photometric="rgb")
    if gt is not None:
        (base / "gt").mkdir(parents=True, exist_ok=True)
        Image.fromarray(gt).save(base / "gt" / f"{name}.png")
    return base / "xyz" / f"{name}.tiff"


def _valid_reference(xyz):
    """Pixel by pixel: invalid when all three coordinates are zero or any is not finite."""
    h, w, _ = xyz.shape
    out = np.zeros((h, w), dtype=bool)
    for r in range(h):
        for c in range(w):
            p = [float(v) for v in xyz[r, c]]
            out[r, c] = all(np.isfinite(v) for v in p) and not all(v == 0.0 for v in p)
    return out


def test_valid_mask_matches_pixel_by_pixel_reference():
    rng = np.random.default_rng(0)
    xyz = _xyz(rng, 12, 9)
    flat = xyz.reshape(-1, 3)
    picks = rng.choice(len(flat), 40, replace=False)
    specials = [np.nan, np.inf, -np.inf, 0.0]
    for i, pick in enumerate(picks):
        if i % 5 == 4:
            flat[pick] = 0.0  # all three zero
        else:
            flat[pick, i % 3] = specials[i % 4]  # one bad or zero coordinate
    assert_close(mvtec.valid_mask(xyz), _valid_reference(xyz), **EXACT, what="valid mask")


def test_read_scan_points_pixels_gt_and_layout(tmp_path):
    rng = np.random.default_rng(1)
    xyz = _xyz(rng)
    xyz[0, 0] = 0.0
    xyz[2, 3, 1] = np.nan
    xyz[5, 4] = 0.0
    gt = np.zeros((6, 5), dtype=np.uint8)
    gt[1:3, 2:4] = 255
    path = _write_sample(tmp_path, "tire", "test", "crack", "007", xyz, gt)
    scan = mvtec.read_scan(path)
    assert (scan.category, scan.split, scan.defect, scan.name) == ("tire", "test", "crack", "007")
    assert scan.xyz.dtype == np.float32 and scan.xyz.shape == (6, 5, 3)
    assert scan.valid.sum() == 27 and not scan.valid[0, 0] and not scan.valid[2, 3]
    rows, cols = np.nonzero(scan.valid)
    assert scan.pixels.dtype == np.int32
    assert_close(scan.pixels, np.stack([rows, cols], 1), **EXACT, what="pixels (row-major)")
    assert_close(scan.points, xyz[rows, cols], **EXACT, what="points")
    assert_close(scan.gt, gt > 0, **EXACT, what="gt")


def test_good_scan_has_no_defect_and_gt_zero_one_png_is_read(tmp_path):
    xyz = _xyz(np.random.default_rng(2))
    gt = np.zeros((6, 5), dtype=np.uint8)
    gt[0, 0] = 1
    path = _write_sample(tmp_path, "bagel", "test", "good", "000", xyz, gt)
    scan = mvtec.read_scan(path)
    assert scan.defect is None and scan.gt.sum() == 1 and scan.gt[0, 0]
    train = mvtec.read_scan(_write_sample(tmp_path, "bagel", "train", "good", "000", xyz))
    assert train.gt is None and train.split == "train"


def test_scan_outside_the_layout_gets_empty_names(tmp_path):
    path = tmp_path / "scan.tiff"
    tifffile.imwrite(path, _xyz(np.random.default_rng(3)), photometric="rgb")
    scan = mvtec.read_scan(path)
    assert (scan.category, scan.split, scan.defect, scan.name, scan.gt) == ("", "", None, "scan", None)


def test_listing_and_lazy_iteration(tmp_path):
    rng = np.random.default_rng(4)
    for cat in ("tire", "bagel"):
        for split, kind, name in [
            ("train", "good", "001"),
            ("train", "good", "000"),
            ("test", "good", "000"),
            ("test", "hole", "000"),
            ("test", "crack", "000"),
        ]:
            _write_sample(tmp_path, cat, split, kind, name, _xyz(rng))
    (tmp_path / "readme.txt").write_text("not a category")
    (tmp_path / "notes").mkdir()
    assert mvtec.list_categories(tmp_path) == ["bagel", "tire"]
    assert mvtec.list_defects(tmp_path, "tire", "test") == ["good", "crack", "hole"]
    paths = mvtec.scan_paths(tmp_path, "tire", "test")
    assert paths == sorted(paths) and len(paths) == 3
    assert [p.name for p in mvtec.scan_paths(tmp_path, "tire", "train")] == ["000.tiff", "001.tiff"]
    scans = mvtec.iter_scans(tmp_path, "tire", "test")
    assert inspect.isgenerator(scans)
    first = next(scans)
    assert first.defect == "crack"
    paths[1].write_bytes(b"broken")  # read only when reached: the iteration is lazy
    with pytest.raises(St3dError, match="not a readable TIFF"):
        next(scans)


def _error(fn, *args):
    with pytest.raises(St3dError) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_root_category_split_and_empty_split(tmp_path):
    assert "dataset root not found" in _error(mvtec.list_categories, tmp_path / "nowhere")
    assert "no categories found" in _error(mvtec.list_categories, tmp_path)
    _write_sample(tmp_path, "tire", "train", "good", "000", _xyz(np.random.default_rng(5)))
    assert "category 'cable' not found" in _error(mvtec.scan_paths, tmp_path, "cable", "train")
    assert "split 'test' not found" in _error(mvtec.iter_scans, tmp_path, "tire", "test")
    (tmp_path / "tire" / "validation" / "good").mkdir(parents=True)
    assert "no scans found" in _error(mvtec.scan_paths, tmp_path, "tire", "validation")


def test_bad_tiffs_are_one_line_errors_naming_the_file(tmp_path):
    rng = np.random.default_rng(6)
    good = tmp_path / "good.tiff"
    tifffile.imwrite(good, _xyz(rng, 40, 40), photometric="rgb")
    truncated = tmp_path / "truncated.tiff"
    truncated.write_bytes(good.read_bytes()[:300])
    gray = tmp_path / "gray.tiff"
    tifffile.imwrite(gray, rng.random((6, 5)).astype(np.float32))
    four = tmp_path / "four.tiff"
    tifffile.imwrite(four, rng.random((6, 5, 4)).astype(np.float32), photometric="minisblack")
    ints = tmp_path / "ints.tiff"
    tifffile.imwrite(ints, rng.integers(1, 9, (6, 5, 3)).astype(np.uint16), photometric="rgb")
    zeros = tmp_path / "zeros.tiff"
    tifffile.imwrite(zeros, np.zeros((6, 5, 3), np.float32), photometric="rgb")
    nans = tmp_path / "nans.tiff"
    tifffile.imwrite(nans, np.full((6, 5, 3), np.nan, np.float32), photometric="rgb")
    cases = {
        truncated: "not a readable TIFF",
        gray: "expected an H x W x 3 point cloud",
        four: "expected an H x W x 3 point cloud",
        ints: "expected float coordinates",
        zeros: "no valid pixels",
        nans: "no valid pixels",
        tmp_path / "absent.tiff": "file not found",
    }
    for path, problem in cases.items():
        message = _error(mvtec.read_scan, path)
        assert message.startswith(str(path)) and problem in message, message


def test_gt_size_mismatch_and_unreadable_gt(tmp_path):
    xyz = _xyz(np.random.default_rng(7))
    path = _write_sample(tmp_path, "tire", "test", "hole", "000", xyz, np.zeros((6, 6), np.uint8))
    message = _error(mvtec.read_scan, path)
    assert message.startswith(str(tmp_path / "tire" / "test" / "hole" / "gt" / "000.png"))
    assert "ground truth is 6x6, the xyz image is 6x5" in message
    (tmp_path / "tire" / "test" / "hole" / "gt" / "000.png").write_bytes(b"\x89PNG broken")
    assert "not a readable image" in _error(mvtec.read_scan, path)


def test_oversized_masks_are_refused_from_the_header(tmp_path, monkeypatch):
    path = tmp_path / "000.png"
    Image.fromarray(np.zeros((400, 300), np.uint8)).save(path)
    monkeypatch.setattr(mvtec, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(
        St3dError, match=r"000.png: image of 400 x 300 has 120000 pixels, more than the maximum 1000"
    ):
        mvtec.read_gt(path, (400, 300))
