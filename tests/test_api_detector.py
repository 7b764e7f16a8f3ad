"""`st3d_edge.Detector` on every input kind, and `infer` on unorganized clouds (toy bundle)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.runtime import outputs
from tests.helpers import EXACT, assert_close
from tests.runtime_fixtures import organized_cloud
from tests.test_edge_imports import BLOCK_TORCH
from tests.test_infer_cli import make_bundle


@pytest.fixture()
def bundle(tmp_path):
    return make_bundle(tmp_path / "bundle")


@pytest.fixture()
def xyz():
    cloud = organized_cloud(16, 18, seed=1)
    cloud[3, 4] = np.nan  # missing point as a structured-light camera marks it
    return cloud


def _valid_points(xyz):
    return xyz[np.isfinite(xyz).all(axis=2) & (xyz != 0).any(axis=2)]


def _write_ply(path, points):
    from plyfile import PlyData, PlyElement

    vertex = np.empty(len(points), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    for i, axis in enumerate("xyz"):
        vertex[axis] = points[:, i]
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(path))
    return path


def test_every_input_kind_gives_the_same_scores(tmp_path, bundle, xyz):
    from pypcd4 import PointCloud

    from st3d_edge import Detector

    det = Detector(bundle, backend="onnxruntime", geometry="cpu")
    tifffile.imwrite(tmp_path / "scan.tiff", xyz, photometric="rgb")
    points = _valid_points(xyz)
    np.save(tmp_path / "scan.npy", points)
    PointCloud.from_xyz_points(points).save(tmp_path / "scan.pcd")
    reference = det(tmp_path / "scan.tiff")
    assert reference.anomaly_map.shape == (16, 18) and reference.verdict in ("good", "anomalous")
    assert set(reference.ms) >= {"read", "sample", "knn", "inference", "fill", "image_score"}
    for scan in (
        xyz,
        str(tmp_path / "scan.tiff"),
        points,
        tmp_path / "scan.npy",
        _write_ply(tmp_path / "scan.ply", points),
        tmp_path / "scan.pcd",
    ):
        result = det(scan)
        # the organized scan's points are its valid pixels in row-major order: the same cloud
        assert_close(result.point_scores, reference.point_scores, **EXACT, what=str(type(scan)))
        assert result.image_score == reference.image_score and result.verdict == reference.verdict
        organized = isinstance(scan, np.ndarray) and scan.ndim == 3 or str(scan).endswith(".tiff")
        assert (result.anomaly_map is not None) == organized


def test_units_scale_the_cloud(bundle, xyz):
    from st3d_edge import Detector

    det = Detector(bundle, backend="onnxruntime", geometry="cpu")
    in_mm = det(xyz * 1000, units="mm")
    # the toy scores are distances divided by s: the same cloud in metres scores the same
    assert_close(in_mm.point_scores, det(xyz).point_scores, rtol=1e-4, atol=1e-6, what="mm")
    with pytest.raises(Exception, match="unknown units"):
        Detector(bundle, units="inch")


def test_detector_imports_without_torch(bundle):
    code = (
        f"from st3d_edge import Detector\nimport numpy as np\n"
        f"det = Detector({str(bundle)!r}, backend='onnxruntime', geometry='cpu')\n"
        "r = det(np.random.default_rng(0).random((300, 3)).astype(np.float32))\n"
        "assert r.point_scores.shape == (300,) and 'torch' not in sys.modules\nprint('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr


def test_infer_writes_per_point_maps_for_unorganized_clouds(tmp_path, bundle, xyz):
    from pypcd4 import PointCloud

    points = _valid_points(xyz)
    scans = tmp_path / "scans"
    scans.mkdir()
    _write_ply(scans / "a.ply", points)
    PointCloud.from_xyz_points(points).save(scans / "b.pcd")
    tifffile.imwrite(scans / "c.tiff", xyz, photometric="rgb")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["infer", str(scans), "--model", str(bundle), "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = {r["file"].rsplit("/", 1)[1]: r for r in outputs.read_results(out / outputs.RESULTS_NAME)}
    assert records["a.ply"]["outputs"] == {"ply": "a.ply"}
    assert records["b.pcd"]["outputs"] == {"ply": "b.ply", "pcd": "b.pcd"}
    assert set(records["c.tiff"]["outputs"]) == {"map", "heatmap"}
    written = outputs.read_ply(out / "a.ply")
    assert_close(np.stack([written[a] for a in "xyz"], axis=1), points, **EXACT, what="ply points")
    assert_close(written["score"], outputs.read_ply(out / "b.ply")["score"], **EXACT, what="ply vs pcd input")
    assert PointCloud.from_path(out / "b.pcd").fields == ("x", "y", "z", "score")
    json.dumps(records)  # strict JSON
    again = CliRunner().invoke(app, ["infer", str(scans), "--model", str(bundle), "--out", str(out)])
    assert again.exit_code == 0 and "skipped 3" in again.output


def test_depth_png_with_intrinsics(tmp_path, bundle):
    from PIL import Image

    from st3d_edge import Detector

    rows, cols = np.mgrid[0:16, 0:18]
    depth = (1000 + 40 * np.exp(-((rows - 5) ** 2 + (cols - 12) ** 2) / 6.0)).astype(np.uint16)
    depth[0, :] = 0  # no return
    Image.fromarray(depth).save(tmp_path / "d.png")
    (tmp_path / "d.json").write_text(json.dumps({"fx": 10, "fy": 10, "cx": 9, "cy": 8, "depth_scale": 0.001}))
    result = Detector(bundle, backend="onnxruntime", geometry="cpu")(tmp_path / "d.png")
    assert result.anomaly_map.shape == (16, 18) and not result.valid[0].any() and result.valid[1:].all()
    assert result.valid_points == 15 * 18
