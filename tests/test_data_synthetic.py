"""Synthetic MVTec-format data: the renderer against slow references, exact ground truth, files."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from st3d_edge.data import camera as camera_module
from st3d_edge.data import mvtec, synthetic
from st3d_edge.data.defects import draw_defect
from st3d_edge.errors import St3dError
from tests.data_helpers import NOISE_STD_ESTIMATE, RAY_HIT
from tests.helpers import EXACT, assert_close


def _scene(category, size=40, seed=0):
    return synthetic.draw_scene(category, np.random.default_rng(seed), (size, size))


@pytest.mark.parametrize("category", synthetic.CATEGORIES)
def test_every_category_is_a_part_on_the_plane_in_metres(category):
    scene = _scene(category, 40, seed=11)
    clean = scene.render()
    on_part = clean.world[..., 2] > 0
    assert 0.03 < on_part.mean() < 0.6, "the part covers a sensible share of the view"
    assert clean.valid.mean() > 0.9
    assert clean.world[..., 2].max() <= scene.part.top
    z = clean.xyz(scene.camera)[..., 2][clean.valid]
    assert 0.37 < z.min() and z.max() < 0.43, "about 0.4 m from the camera"
    u = np.linspace(-scene.part.radius * 1.5, scene.part.radius * 1.5, 200)
    uu, vv = np.meshgrid(u, u)
    h = scene.part.height(uu.ravel(), vv.ravel())
    assert h.min() == 0.0 and h.max() <= scene.part.top
    assert (h[np.hypot(uu.ravel(), vv.ravel()) > scene.part.radius] == 0).all(), "footprint within radius"


def _dense_first_hit(height, origin, direction, z_top, step=2e-7):
    """The obvious intersection: sample the ray every 0.2 um of height, take the first sample inside."""
    z = np.append(np.arange(z_top, 0.0, -step), 0.0)
    t = (z - origin[2]) / direction[2]
    inside = z - height(origin[0] + t * direction[0], origin[1] + t * direction[1]) <= 0
    return t[int(np.argmax(inside))]


@pytest.mark.parametrize("category", ["tire", "foam"])
def test_ray_marching_matches_dense_sampling(category):
    scene = _scene(category, 48, seed=2)
    defect = draw_defect("hole", np.random.default_rng(3), scene.part)
    height = scene.height(defect)
    fast = scene.render(defect)
    origin = scene.camera.centre()
    dirs = scene.camera.pixel_rays() @ scene.camera.rotation().T
    on_part = np.flatnonzero(fast.world[..., 2].ravel() > 0)
    picks = np.random.default_rng(4).choice(on_part, 25, replace=False)
    picks = np.append(picks, [0, 48 * 48 - 1])  # two plane pixels in the corners
    reference = [_dense_first_hit(height, origin, dirs[i], scene.z_top) for i in picks]
    assert_close(fast.depth.ravel()[picks], reference, **RAY_HIT, what="hit depth")


def test_render_shortcuts_change_nothing(monkeypatch):
    """Reference: every ray in the part's box marched from z_top (no culling, no skipped levels)."""
    scene = _scene("bagel", 40, seed=5)
    defect = draw_defect("contamination", np.random.default_rng(6), scene.part)
    culled = scene.render(defect)
    monkeypatch.setattr(
        camera_module, "rays_near_part", lambda height, top_xy, bottom_xy, bbox: np.ones(len(top_xy), bool)
    )
    monkeypatch.setattr(camera_module, "footprint_grid", lambda height, bbox: np.full((1, 1), np.inf))
    every_ray = scene.render(defect)
    for field in ("depth", "valid", "world", "normal"):
        assert_close(getattr(culled, field), getattr(every_ray, field), **EXACT, what=field)


CASES = list(zip(synthetic.DEFECTS, ["cookie", "tire", "potato", "bagel", "foam", "bracket"], strict=True))


@pytest.mark.parametrize(("kind", "category"), CASES)
def test_gt_is_exactly_the_pixels_the_defect_changed(kind, category):
    size = 64
    scene = _scene(category, size, seed=7)
    rng = np.random.default_rng(8)
    good, bad, gt = synthetic.render_defective(scene, kind, rng)
    # reference: the same defect, both scenes rendered in full
    defect = draw_defect(kind, np.random.default_rng(8), scene.part)
    full_good, full_bad = scene.render(), scene.render(defect)
    assert_close(bad.depth, full_bad.depth, **EXACT, what="defective render")
    assert_close(good.depth, full_good.depth, **EXACT, what="good render patched near the defect")
    assert_close(good.valid, full_good.valid, **EXACT, what="good validity")
    reference_gt = (full_good.valid != full_bad.valid) | (
        np.abs(full_good.depth - full_bad.depth) > synthetic.GT_EPSILON
    )
    assert_close(gt, reference_gt, **EXACT, what="gt")
    assert gt.sum() >= max(8, synthetic.min_defect_pixels((size, size))), "visible at 64 px"
    changed = (full_good.valid != full_bad.valid) | (full_good.depth != full_bad.depth)
    assert changed[gt].all(), "every gt pixel changed"
    assert_close(full_good.valid[~gt], full_bad.valid[~gt], **EXACT, what="validity off the gt")
    off_gt = np.abs(full_good.depth - full_bad.depth)[~gt]
    assert off_gt.max() <= synthetic.GT_EPSILON, "off the gt, depth moved by rounding at most"
    far = ~scene.rays_near(defect)
    assert far.sum() > 0.7 * size * size  # the region covers the defect's shadow segments too
    assert_close(full_good.depth[far], full_bad.depth[far], **EXACT, what="depth far from the defect")


def _dense_shadow(height, point, light, z_top, steps=4000) -> bool:
    """Reference: the segment towards the light sampled densely up to z_top, under the surface anywhere?"""
    if point[2] <= 0.0 and height(np.array([point[0]]), np.array([point[1]]))[0] > 0.0:
        return False
    t = np.linspace(0.0, (z_top - point[2]) / (light[2] - point[2]), steps)[1:]
    x, y, z = (point[:, None] + (light - point)[:, None] * t).reshape(3, -1)
    return bool(np.any(height(x, y) > z + 1e-6))


def test_projector_shadows_leave_holes_beside_walls():
    scene = _scene("bracket", 96, seed=3)
    clean = scene.render()
    cam = scene.camera
    projector = cam.centre() + cam.rotation() @ np.array([cam.projector_offset, 0.0, 0.0])
    height = scene.height()
    shadowed = [_dense_shadow(height, p, projector, scene.z_top) for p in clean.world.reshape(-1, 3)]
    shadowed = np.array(shadowed).reshape(96, 96)
    assert shadowed.sum() > 20, "tall walls cast projector shadows"
    # the reference samples the segment continuously, the renderer on height levels: points at the
    # very foot of a wall may fall either way
    assert clean.valid[shadowed].sum() <= 0.05 * shadowed.sum(), "no depth where the projector cannot reach"


def test_grazing_surfaces_return_no_depth_and_the_plane_does():
    scene = _scene("dowel", 64, seed=9)
    cam = scene.camera
    clean = scene.render()
    assert (~clean.valid).sum() > 0, "the rod's flanks are too steep to scan"
    # reference: angles to the camera and to the projector, pixel by pixel from the world hit
    centre = cam.centre()
    projector = centre + cam.rotation() @ np.array([cam.projector_offset, 0.0, 0.0])
    expected = np.zeros((64, 64), dtype=bool)
    height = scene.height()
    for r in range(64):
        for c in range(64):
            p, n = clean.world[r, c], clean.normal[r, c]
            to_cam = (centre - p) / np.linalg.norm(centre - p)
            to_proj = (projector - p) / np.linalg.norm(projector - p)
            lit = n @ to_cam >= cam.min_cos and n @ to_proj >= cam.min_cos
            expected[r, c] = lit and not _dense_shadow(height, p, projector, scene.z_top)
    mismatch = expected != clean.valid
    assert mismatch.sum() <= 2, "only pixels exactly at the angle limit may round differently"
    plane = (clean.world[..., 2] == 0) & (clean.normal[..., 2] == 1.0)
    assert clean.valid[plane & expected].all()


def test_sensor_noise_and_dropouts():
    scan = synthetic.render_sample("cookie", np.random.default_rng(10), (64, 64))
    clean_xyz = scan.clean.xyz(synthetic.Camera(64, 64))
    valid = mvtec.valid_mask(scan.xyz)
    assert not (valid & ~scan.clean.valid).any(), "noise never creates points"
    dropped = scan.clean.valid & ~valid
    assert 0 <= dropped.sum() <= 20 * synthetic.DROPOUT * 64 * 64
    along_ray = (scan.xyz[..., 2] - clean_xyz[..., 2])[valid]
    assert_close(along_ray.std(), synthetic.NOISE_STD, **NOISE_STD_ESTIMATE, what="depth noise std")
    assert scan.rgb.dtype == np.uint8 and scan.rgb.shape == (64, 64, 3) and not scan.gt.any()


def _digest(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_write_dataset_layout_readback_and_determinism(tmp_path):
    kwargs = dict(train=2, validation=1, test_good=1, test_defect=1, size=(24, 32), progress=False)
    root = synthetic.write_dataset(tmp_path / "a", categories=["tire", "dowel"], seed=3, **kwargs)
    files = set(_digest(root / "tire"))
    expected = {
        f"{split}/good/{kind}/{i:03d}.{ext}"
        for split, n in (("train", 2), ("validation", 1))
        for i in range(n)
        for kind, ext in (("xyz", "tiff"), ("rgb", "png"))
    }
    for kind in ("good", *synthetic.DEFECTS):
        expected |= {f"test/{kind}/xyz/000.tiff", f"test/{kind}/rgb/000.png", f"test/{kind}/gt/000.png"}
    assert files == expected
    assert mvtec.list_categories(root) == ["dowel", "tire"]
    good = mvtec.read_scan(root / "tire" / "test" / "good" / "xyz" / "000.tiff")
    assert good.gt is not None and not good.gt.any() and good.xyz.shape == (24, 32, 3)
    for kind in synthetic.DEFECTS:
        scan = mvtec.read_scan(root / "tire" / "test" / kind / "xyz" / "000.tiff")
        assert scan.defect == kind and scan.gt.sum() >= synthetic.min_defect_pixels((24, 32))
    again = synthetic.write_dataset(tmp_path / "b", categories=["dowel"], seed=3, **kwargs)
    assert _digest(again / "dowel") == _digest(root / "dowel"), "same seed, byte-identical files"
    other = synthetic.write_dataset(tmp_path / "c", categories=["dowel"], seed=4, **kwargs)
    assert _digest(other / "dowel") != _digest(root / "dowel")
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")], "no staging left"


def test_an_interrupted_category_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []
    real = synthetic.render_sample

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "render_sample", failing)
    with pytest.raises(KeyboardInterrupt):
        synthetic.write_dataset(tmp_path, categories=["carrot"], train=4, size=(16, 16), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_names_and_sizes_are_user_errors(tmp_path):
    with pytest.raises(St3dError, match="unknown name.*teapot"):
        synthetic.write_dataset(tmp_path, categories=["teapot"], progress=False)
    with pytest.raises(St3dError, match="unknown name.*scratch"):
        synthetic.write_dataset(tmp_path, defects=["scratch"], progress=False)
    with pytest.raises(St3dError, match="too small"):
        synthetic.write_dataset(tmp_path, size=(8, 8), progress=False)
