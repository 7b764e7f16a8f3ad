from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from st3d_edge.errors import St3dError
from st3d_edge.runtime import outputs
from st3d_edge.runtime.timing import StageClock, summarize, summarize_runs
from tests.helpers import EXACT, FLOAT32_SAME_MATH, assert_close


def test_colormap_ends_and_clipping():
    rgb = outputs.colormap(np.array([0.0, 1.0, 2.0, 4.0, -1.0, np.nan]), vmax=2.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (6, 3)
    assert tuple(rgb[0]) == (0, 0, 3)  # the bottom of the scale
    assert tuple(rgb[1]) == (187, 55, 84)  # the middle: the pixel threshold's colour
    assert tuple(rgb[2]) == tuple(rgb[3]) == (252, 254, 164)  # top, clipped above
    assert tuple(rgb[4]) == tuple(rgb[5]) == (0, 0, 3)  # below 0 and NaN go to the bottom


def test_colormap_is_matplotlibs_inferno():
    import matplotlib

    values = np.concatenate([np.linspace(0, 1, 1001), [0.5 - 1e-9, 1 / 256, 255 / 256]])
    expected = matplotlib.colormaps["inferno"](values, bytes=True)[:, :3]
    assert_close(outputs.colormap(values, 1.0), expected, **EXACT, what="colormap")


def test_colour_scale_uses_the_pixel_threshold_when_known():
    values = np.array([0.1, 3.0], dtype=np.float32)
    assert outputs.colour_scale_max(values, 0.5) == 1.0
    assert outputs.colour_scale_max(values, None) == 3.0


def test_map_tiff_and_heatmap_png(tmp_path):
    amap = np.array([[0.0, 1.0], [2.0, 0.5]], dtype=np.float32)
    valid = np.array([[False, True], [True, True]])
    outputs.write_map_tiff(tmp_path / "m.tiff", amap)
    back = tifffile.imread(tmp_path / "m.tiff")
    assert back.dtype == np.float32
    assert_close(back, amap, **EXACT, what="map tiff")
    outputs.write_heatmap_png(tmp_path / "h.png", amap, valid, vmax=2.0)
    png = np.asarray(Image.open(tmp_path / "h.png"))
    assert png.shape == (2, 2, 3)
    assert tuple(png[0, 0]) == outputs.INVALID_RGB
    assert tuple(png[1, 0]) == (252, 254, 164)
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temporaries


def test_ply_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    pts = rng.standard_normal((50, 3)).astype(np.float32)
    scores = rng.random(50).astype(np.float32)
    outputs.write_ply(tmp_path / "c.ply", pts, scores, vmax=1.0)
    head = (tmp_path / "c.ply").read_bytes()[:200].decode("ascii", "replace")
    assert head.startswith("ply\nformat binary_little_endian 1.0\n") and "element vertex 50" in head
    back = outputs.read_ply(tmp_path / "c.ply")
    assert_close(np.stack([back["x"], back["y"], back["z"]], 1), pts, **EXACT, what="xyz")
    assert_close(back["score"], scores, **EXACT, what="score")
    rgb = np.stack([back["red"], back["green"], back["blue"]], 1)
    assert_close(rgb, outputs.colormap(scores, 1.0), **EXACT, what="colours")


def test_output_names_are_unique_in_an_mvtec_tree():
    paths = [Path("d/tire/test/crack/xyz/000.tiff"), Path("d/tire/test/good/xyz/000.tiff")]
    assert list(outputs.output_names(paths).values()) == ["crack_000", "good_000"]
    assert list(outputs.output_names([Path("a/b/007.tiff")]).values()) == ["007"]
    same_stem = [Path("s/scan.ply"), Path("s/scan.pcd"), Path("s/other.ply")]
    assert list(outputs.output_names(same_stem).values()) == ["scan_ply", "scan_pcd", "other"]


def test_results_jsonl_appends_and_drops_a_torn_line(tmp_path):
    path = tmp_path / "results.jsonl"
    outputs.append_result(path, {"file": "a", "image_score": 1.0})
    outputs.append_result(path, {"file": "b", "image_score": 2.0})
    outputs.append_result(path, {"file": "a", "image_score": 3.0})
    with open(path, "a") as fh:
        fh.write('{"file": "c", "ima')  # a writer killed mid-line
    records = outputs.read_results(path)
    assert [(r["file"], r["image_score"]) for r in records] == [("a", 1.0), ("b", 2.0), ("a", 3.0)]
    assert outputs.drop_torn_tail(path) and not outputs.drop_torn_tail(path)
    outputs.append_result(path, {"file": "c", "image_score": 4.0})
    assert [json.loads(line)["file"] for line in path.read_text().splitlines()] == ["a", "b", "a", "c"]


def test_results_jsonl_is_strict_json(tmp_path):
    path = tmp_path / "results.jsonl"
    with pytest.raises(ValueError):
        outputs.append_result(path, {"file": "a", "image_score": float("nan")})
    assert not path.exists() or path.read_text() == ""


def test_results_jsonl_with_foreign_lines_or_a_folder_is_refused(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"file": "a"}\nhello\n{"file": "b"}\n')
    with pytest.raises(St3dError, match="line 2 is not a results record"):
        outputs.read_results(path)
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    with pytest.raises(St3dError, match="is a folder"):
        outputs.read_results(folder)


def _append_many(path, tag, count):
    for i in range(count):
        outputs.append_result(path, {"file": f"{tag}{i}", "pad": "x" * 5000})


def test_two_processes_appending_lose_no_record(tmp_path):
    import multiprocessing

    path = tmp_path / "results.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(path, tag, 200)) for tag in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    files = [r["file"] for r in outputs.read_results(path)]
    assert sorted(files) == sorted(f"{t}{i}" for t in "ab" for i in range(200))


def test_stage_clock_and_summaries():
    clock = StageClock()
    with clock.stage("sample"):
        pass
    with clock.stage("sample"):
        pass
    assert set(clock.ms) == {"sample"} and clock.ms["sample"] >= 0
    stats = summarize([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert_close([stats["median"], stats["p90"]], [5.5, 9.1], **FLOAT32_SAME_MATH, what="median/p90")
    table = summarize_runs([{"knn": 1.0, "read": 2.0}, {"knn": 3.0, "read": 2.0}])
    assert list(table) == ["read", "knn", "total"]
    assert table["total"]["median"] == 4.0
