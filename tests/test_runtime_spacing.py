"""The units refusal: a scan whose point spacing is far from the model's s."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.errors import St3dError
from st3d_edge.runtime.spacing import check_spacing, scan_spacing
from tests.runtime_fixtures import organized_cloud
from tests.test_infer_cli import make_bundle


def test_spacing_by_hand():
    points = np.array([[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0]])
    knn = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    assert scan_spacing(points, knn) == pytest.approx(8 / 6)  # (1 + 2) + (1 + 1) + (1 + 2) over 6
    assert scan_spacing(points, knn[:1]) == pytest.approx(1.5)  # only the first row's neighbours


def test_band_and_hints():
    check_spacing("a.ply", 3.0, 1.0)  # a larger part: fine
    with pytest.raises(
        St3dError, match=r"a\.ply: point spacing 1e\+03 is 1e\+03 times .*millimetres read as metres"
    ):
        check_spacing("a.ply", 1000.0, 1.0)
    with pytest.raises(St3dError, match="metres read as micrometres"):
        check_spacing("a.ply", 1e-6, 1.0)


def test_detector_and_infer_refuse_a_scan_in_millimetres(tmp_path):
    from st3d_edge import Detector

    bundle = make_bundle(tmp_path / "bundle")
    xyz = organized_cloud(16, 18, seed=1)
    det = Detector(bundle, backend="onnxruntime", geometry="cpu")
    with pytest.raises(St3dError, match="units look wrong"):
        det(xyz * 1000)
    assert det(xyz * 1000, units="mm").verdict in ("good", "anomalous")
    tifffile.imwrite(tmp_path / "mm.tiff", xyz * 1000, photometric="rgb")
    args = ["infer", str(tmp_path / "mm.tiff"), "--model", str(bundle), "--out", str(tmp_path / "out")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and "--units m|mm|um" in res.stderr
    assert CliRunner().invoke(app, [*args, "--units", "mm"]).exit_code == 0
