"""Overlay and mask pictures: by hand, and through `infer --overlay --mask`."""

from __future__ import annotations

import numpy as np
import tifffile
from PIL import Image
from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.runtime import overlay
from st3d_edge.runtime.outputs import RESULTS_NAME, colormap, read_results
from tests.helpers import EXACT, assert_close
from tests.runtime_fixtures import organized_cloud
from tests.test_infer_cli import make_bundle, write_scan


def test_mask_by_hand():
    amap = np.array([[0.1, 0.5], [0.9, 0.9]], dtype=np.float32)
    valid = np.array([[True, True], [True, False]])
    assert_close(overlay.defect_mask(amap, valid, 0.5), [[0, 0], [255, 0]], **EXACT, what="mask")


def test_shading_of_a_tilted_plane():
    rows, cols = np.mgrid[0:5, 0:6].astype(np.float64)
    xyz = np.stack([cols, rows, 0.5 * cols], axis=2)  # normal ~ (-0.5, 0, 1)
    valid = np.ones((5, 6), dtype=bool)
    valid[0, 0] = False
    grey = overlay.shaded(xyz[valid], valid)[..., 0]
    normal = np.array([-0.5, 0.0, 1.0]) / np.linalg.norm([-0.5, 0.0, 1.0])
    expected = np.rint(60 + 180 * abs(normal @ overlay._LIGHT))
    assert grey[0, 0] == overlay.INVALID_SHADE
    assert (grey[2:, 2:] == expected).all()  # away from the invalid corner's jump


def test_overlay_blend_and_bar():
    base = np.full((40, 3, 3), 100, dtype=np.uint8)
    amap = np.zeros((40, 3), dtype=np.float32)
    amap[:, 1] = 5.0  # above the top of the scale
    valid = np.ones((40, 3), dtype=bool)
    valid[:, 2] = False
    picture = overlay.overlay_rgb(base, amap, valid, vmax=2.0, pixel_threshold=1.0)
    assert picture.shape == (40, 3 + overlay.BAR_MARGIN + overlay.BAR_WIDTH + overlay.LABEL_WIDTH, 3)
    top = colormap(np.array([2.0]), 2.0)[0]
    assert_close(picture[0, 1], np.rint(0.85 * top + 0.15 * 100), **EXACT, what="hot pixel")
    low = colormap(np.array([0.0]), 2.0)[0]
    assert_close(picture[0, 0], np.rint(0.25 * low + 0.75 * 100), **EXACT, what="cold pixel")
    assert (picture[:, 2] == 100).all()  # invalid: the picture alone
    bar = picture[:, 3 + overlay.BAR_MARGIN + 2]
    white = [r for r in range(40) if (bar[r] == 255).all()]
    assert white and abs(np.mean(white) - 19.5) <= 1.5  # the threshold sits mid-scale


def test_infer_overlay_and_mask_files(tmp_path):
    bundle = make_bundle(tmp_path / "bundle")
    xyz = organized_cloud(16, 18, seed=1)
    scan = write_scan(tmp_path / "data" / "toy" / "test" / "bump" / "xyz" / "000.tiff", xyz)
    rgb_dir = scan.parent.parent / "rgb"
    rgb_dir.mkdir()
    Image.fromarray(np.full((16, 18, 3), (0, 200, 0), dtype=np.uint8)).save(rgb_dir / "000.png")
    out = tmp_path / "out"
    args = ["infer", str(scan), "--model", str(bundle), "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, [*args, "--overlay", "--mask"])
    assert res.exit_code == 0 and "scored 1" in res.output  # the extras were missing: scored again
    record = read_results(out / RESULTS_NAME)[-1]  # appended: the last record of a scan counts
    assert set(record["outputs"]) == {"map", "heatmap", "overlay", "mask"}
    amap = tifffile.imread(out / record["outputs"]["map"])
    mask = np.asarray(Image.open(out / record["outputs"]["mask"]))
    valid = (xyz != 0).any(axis=2)
    assert_close(mask, np.where(valid & (amap > 0.05), 255, 0), **EXACT, what="mask file")
    picture = np.asarray(Image.open(out / record["outputs"]["overlay"]))
    assert picture.shape[:2] == (16, 18 + overlay.BAR_MARGIN + overlay.BAR_WIDTH + overlay.LABEL_WIDTH)
    assert (picture[:, :18][~valid][:, 1] == 200).all()  # the rgb image shows where there is no point
    again = CliRunner().invoke(app, [*args, "--overlay", "--mask"])
    assert "skipped 1" in again.output


def test_mask_needs_a_pixel_threshold(tmp_path):
    bundle = make_bundle(tmp_path / "bundle", thresholds={})
    scan = write_scan(tmp_path / "s" / "000.tiff", organized_cloud(16, 18, seed=1))
    res = CliRunner().invoke(
        app, ["infer", str(scan), "--model", str(bundle), "--out", str(tmp_path / "o"), "--mask"]
    )
    assert res.exit_code == 2 and "--mask needs a pixel threshold" in res.stderr
