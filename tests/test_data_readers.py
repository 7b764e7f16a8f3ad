"""Scan readers: every format written by its own library (or numpy/tifffile/pillow), read by ours."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from st3d_edge.data.depth import Intrinsics, depth_to_xyz
from st3d_edge.data.readers import array_scan, read_points, read_scan
from st3d_edge.errors import St3dError
from tests.helpers import EXACT, FLOAT32_SAME_MATH, assert_close


def _cloud(count: int = 50, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (count, 3)).astype(np.float32)


def _organized(height: int = 6, width: int = 5, seed: int = 0) -> np.ndarray:
    xyz = np.random.default_rng(seed).uniform(0.1, 1.0, (height, width, 3)).astype(np.float32)
    xyz[0, 0] = 0.0  # MVTec's invalid pixel
    xyz[1, 2] = np.nan  # a structured-light camera's missing point
    xyz[2, 3, 1] = np.inf
    return xyz


def _valid_rows(xyz: np.ndarray) -> np.ndarray:
    keep = np.isfinite(xyz).all(axis=2) & (xyz != 0).any(axis=2)
    return xyz[keep]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_organized_tiff_with_nan_and_zero_invalid(tmp_path, dtype):
    xyz = _organized().astype(dtype)
    tifffile.imwrite(tmp_path / "scan.tiff", xyz)
    scan = read_scan(tmp_path / "scan.tiff")
    assert scan.organized and scan.valid.shape == (6, 5)
    assert int(scan.valid.sum()) == 30 - 3
    assert not scan.valid[0, 0] and not scan.valid[1, 2] and not scan.valid[2, 3]
    assert_close(scan.points, _valid_rows(xyz.astype(np.float32)), **EXACT, what="points")


def test_organized_npy_and_npz(tmp_path):
    xyz = _organized()
    np.save(tmp_path / "a.npy", xyz)
    np.savez(tmp_path / "b.npz", xyz=xyz, other=np.zeros(3))
    for name in ("a.npy", "b.npz"):
        scan = read_scan(tmp_path / name)
        assert scan.organized
        assert_close(scan.points, _valid_rows(xyz), **EXACT, what=name)


def test_unorganized_npy_drops_nonfinite_points(tmp_path):
    points = _cloud()
    points[7] = np.nan
    np.save(tmp_path / "c.npy", points)
    scan = read_scan(tmp_path / "c.npy")
    assert not scan.organized and scan.valid is None
    assert_close(scan.points, np.delete(points, 7, axis=0), **EXACT, what="points")


@pytest.mark.parametrize("text", [True, False])
def test_ply_round_trip_with_label_field(tmp_path, text):
    from plyfile import PlyData, PlyElement

    points = _cloud()
    vertex = np.empty(len(points), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("label", "u1")])
    for i, axis in enumerate("xyz"):
        vertex[axis] = points[:, i]
    vertex["label"] = np.arange(len(points)) % 5 == 0
    PlyData([PlyElement.describe(vertex, "vertex")], text=text).write(str(tmp_path / "c.ply"))
    scan = read_scan(tmp_path / "c.ply")
    assert_close(scan.points, points, **(FLOAT32_SAME_MATH if text else EXACT), what="ply points")
    np.testing.assert_array_equal(scan.gt, vertex["label"] != 0)


@pytest.mark.parametrize("encoding", ["ascii", "binary", "binary_compressed"])
def test_pcd_round_trip(tmp_path, encoding):
    from pypcd4 import Encoding, PointCloud

    points = _cloud()
    PointCloud.from_xyz_points(points).save(tmp_path / "c.pcd", encoding=Encoding(encoding))
    scan = read_scan(tmp_path / "c.pcd")
    assert not scan.organized
    assert_close(scan.points, points, **(FLOAT32_SAME_MATH if encoding == "ascii" else EXACT), what=encoding)


def test_organized_pcd_keeps_its_grid(tmp_path):
    from pypcd4 import Encoding, PointCloud

    xyz = _organized()
    cloud = PointCloud.from_xyz_points(xyz.reshape(-1, 3))
    cloud.metadata = cloud.metadata.derive(width=5, height=6)
    cloud.save(tmp_path / "o.pcd", encoding=Encoding.BINARY)
    scan = read_scan(tmp_path / "o.pcd")
    assert scan.organized and scan.valid.shape == (6, 5)
    assert_close(scan.points, _valid_rows(xyz), **EXACT, what="organized pcd")


@pytest.mark.parametrize("delimiter", [" ", ","])
def test_xyz_text(tmp_path, delimiter):
    points = _cloud()
    extra = np.ones((len(points), 1))  # a fourth column (intensity) is ignored
    np.savetxt(tmp_path / "c.xyz", np.hstack([points, extra]), delimiter=delimiter, header="x y z i")
    assert_close(read_points(tmp_path / "c.xyz"), points, **FLOAT32_SAME_MATH, what="text")


@pytest.mark.parametrize("units, factor", [("m", 1.0), ("mm", 1e-3), ("um", 1e-6)])
def test_units_convert_to_metres(tmp_path, units, factor):
    points = _cloud() * 1000
    np.save(tmp_path / "c.npy", points)
    assert_close(
        read_points(tmp_path / "c.npy", units=units), points * factor, **FLOAT32_SAME_MATH, what=units
    )


def test_depth_png_with_intrinsics_beside_it(tmp_path):
    depth = np.full((4, 6), 1500, dtype=np.uint16)
    depth[0, 0] = 0
    Image.fromarray(depth).save(tmp_path / "d.png")
    (tmp_path / "intrinsics.json").write_text(
        json.dumps({"fx": 100.0, "fy": 200.0, "cx": 2.0, "cy": 1.0, "depth_scale": 0.001})
    )
    scan = read_scan(tmp_path / "d.png")
    assert scan.organized and not scan.valid[0, 0] and int(scan.valid.sum()) == 23
    # pixel (row 3, col 5): z = 1.5 m, x = (5 - 2) * 1.5 / 100, y = (3 - 1) * 1.5 / 200
    assert_close(scan.xyz[3, 5], [0.045, 0.015, 1.5], **FLOAT32_SAME_MATH, what="back-projection")


def test_depth_tiff_needs_intrinsics(tmp_path):
    tifffile.imwrite(tmp_path / "d.tiff", np.ones((4, 4), dtype=np.uint16))
    with pytest.raises(St3dError, match=r"d\.tiff: a depth image needs camera intrinsics"):
        read_scan(tmp_path / "d.tiff")
    scan = read_scan(tmp_path / "d.tiff", intrinsics=Intrinsics(1.0, 1.0, 0.0, 0.0), units="mm")
    assert_close(scan.xyz[0, 0], [0.0, 0.0, 1e-3], **FLOAT32_SAME_MATH, what="mm depth")


def test_depth_to_xyz_matches_pinhole_by_hand():
    xyz = depth_to_xyz(None, np.array([[2.0, 0.0]]), Intrinsics(fx=2.0, fy=4.0, cx=1.0, cy=0.0))
    assert_close(xyz, [[[-1.0, 0.0, 2.0], [0.0, 0.0, 0.0]]], **EXACT, what="depth")


def test_arrays_of_both_kinds():
    assert array_scan(_organized()).organized
    assert not array_scan(_cloud()).organized
    with pytest.raises(St3dError, match="<array>: expected an H x W x 3 or N x 3"):
        array_scan(np.zeros((4, 2)))


def test_sidecar_point_mask(tmp_path):
    points = _cloud()
    np.save(tmp_path / "c.npy", points)
    np.save(tmp_path / "c_gt.npy", np.arange(len(points)) < 3)
    scan = read_scan(tmp_path / "c.npy", gt_path=tmp_path / "c_gt.npy")
    assert int(scan.gt.sum()) == 3
    np.save(tmp_path / "bad_gt.npy", np.zeros(7))
    with pytest.raises(St3dError, match=r"bad_gt\.npy: holds 7 labels, the scan has 50 points"):
        read_scan(tmp_path / "c.npy", gt_path=tmp_path / "bad_gt.npy")


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("bad.ply", b"not a ply at all", "not a readable PLY"),
        ("bad.pcd", b"garbage\n", "not a readable PCD"),
        ("bad.xyz", b"1 2\n3 4\n", "not a text point cloud"),
        ("bad.npy", b"\x93NUMPY broken", "not a readable .npy"),
        ("bad.tiff", b"not a tiff", "not a readable TIFF"),
        ("bad.obj", b"v 1 2 3", "unknown scan format .obj"),
    ],
)
def test_bad_files_are_one_line_naming_the_file(tmp_path, name, content, problem):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(St3dError) as info:
        read_scan(tmp_path / name)
    message = str(info.value)
    assert message.startswith(str(tmp_path / name)) and problem in message and "\n" not in message


def test_wrong_shapes_and_empty_clouds(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((4, 4)))
    with pytest.raises(St3dError, match="shape"):
        read_scan(tmp_path / "flat.npy")
    np.save(tmp_path / "nan.npy", np.full((5, 3), np.nan))
    with pytest.raises(St3dError, match="no valid points"):
        read_scan(tmp_path / "nan.npy")
    tifffile.imwrite(tmp_path / "rgb.tiff", np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(St3dError, match="colour image"):
        read_scan(tmp_path / "rgb.tiff")
    with pytest.raises(St3dError, match="unknown units"):
        read_scan(tmp_path / "nan.npy", units="inch")


def test_folders_list_clouds_but_not_images_or_notes(tmp_path):
    from st3d_edge.data.scanlist import expand_scan_paths

    for name in ("a.tiff", "b.ply", "c.pcd", "d.npy", "e.xyz", "rgb.png", "notes.txt", "intrinsics.json"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        (tmp_path / "sub" / name).write_bytes(b"")
    found = [p.name for p in expand_scan_paths([tmp_path])]
    assert found == ["a.tiff", "b.ply", "c.pcd", "d.npy", "e.xyz"]
    assert [p.name for p in expand_scan_paths([str(tmp_path / "sub" / "*.txt")])] == ["notes.txt"]
    with pytest.raises(St3dError, match="no such file or folder"):
        expand_scan_paths([tmp_path / "nothing"])


def test_read_options_key_only_names_what_differs(tmp_path):
    from st3d_edge.data.readers import ReadOptions

    assert ReadOptions().key() == {}
    key = ReadOptions("mm", str(tmp_path / "cam.json")).key()
    assert key == {"units": "mm", "intrinsics": str((tmp_path / "cam.json").resolve())}
    np.save(tmp_path / "c.npy", _cloud())
    assert_close(
        ReadOptions("mm").points(tmp_path / "c.npy"), _cloud() * 1e-3, **FLOAT32_SAME_MATH, what="mm"
    )
