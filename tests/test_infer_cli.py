"""`st3d-edge infer` in-process: files written, skip/overwrite, a bad scan in a batch, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.runtime import outputs
from tests.helpers import EXACT, assert_close
from tests.runtime_fixtures import organized_cloud, write_toy_scorer

K = 6


def make_bundle(folder, n=96, k=K, thresholds=None, s=0.1, graph_k=None, signing_key=None):
    """A toy bundle; s = 0.1 is near the toy scans' own point spacing (0.11 at n = 96)."""
    from st3d_edge.runtime.bundle import write_manifest

    write_toy_scorer(folder / "model.onnx", k=graph_k or k)
    write_manifest(
        folder,
        signing_key=signing_key,
        category="toy",
        n=n,
        k=k,
        d=0,
        s=s,
        sampler="fps",
        precision="fp32",
        models={"fp32": "model.onnx"},
        thresholds=thresholds if thresholds is not None else {"image": 0.05, "pixel": 0.05},
        image_score={},
        versions={},
    )
    return folder


def write_scan(path, xyz):
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, xyz, photometric="rgb")
    return path


@pytest.fixture()
def setup(tmp_path):
    bundle = make_bundle(tmp_path / "bundle")
    data = tmp_path / "data" / "toy" / "test"
    scans = [
        write_scan(data / "bump" / "xyz" / "000.tiff", organized_cloud(16, 18, seed=1)),
        write_scan(data / "good" / "xyz" / "000.tiff", organized_cloud(16, 18, seed=2, bump=False)),
    ]
    return tmp_path, bundle, data, scans


def invoke(args):
    return CliRunner().invoke(app, ["infer", *map(str, args)])


def test_infer_a_folder_writes_everything(setup):
    tmp_path, bundle, data, scans = setup
    out = tmp_path / "out"
    res = invoke([data, "--model", bundle, "--out", out, "--ply", "--geometry", "cpu"])
    assert res.exit_code == 0, res.output
    assert "backend: onnxruntime-cpu" in res.output
    for name, scan in zip(("bump_000", "good_000"), scans, strict=True):
        amap = tifffile.imread(out / f"{name}_map.tiff")
        assert amap.dtype == np.float32 and amap.shape == (16, 18)
        assert np.asarray(Image.open(out / f"{name}_heatmap.png")).shape == (16, 18, 3)
        # the PLY holds the valid pixels in row-major order, with the map's scores
        valid = np.any(tifffile.imread(scan) != 0, axis=-1)
        ply = outputs.read_ply(out / f"{name}.ply")
        assert_close(ply["score"], amap[valid], **EXACT, what="ply vs map")
        assert_close(amap[~valid], np.zeros((~valid).sum()), **EXACT, what="invalid pixels")
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["file"] for r in records) == sorted(str(p.resolve()) for p in scans)
    for r in records:
        assert r["verdict"] in ("good", "anomalous")
        assert {"sample", "knn", "inference", "fill", "image_score", "read"} <= set(r["ms"])
    assert not list(out.glob(".*"))  # no temporaries left behind


def test_second_run_skips_and_overwrite_rescores(setup):
    tmp_path, bundle, data, scans = setup
    out = tmp_path / "out"
    assert invoke([scans[0], "--model", bundle, "--out", out]).exit_code == 0
    res = invoke([str(data / "*" / "xyz" / "*.tiff"), "--model", bundle, "--out", out])
    assert res.exit_code == 0, res.output
    assert "scored 1, skipped 1" in res.output
    res = invoke([scans[0], "--model", bundle, "--out", out, "--overwrite"])
    assert "scored 1, skipped 0" in res.output
    # appended, never rewritten: the rescored scan's newer record follows the older one
    files = [json.loads(line)["file"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert files == [str(scans[0].resolve()), str(scans[1].resolve()), str(scans[0].resolve())]


def test_bad_scan_is_reported_and_the_rest_go_on(setup):
    tmp_path, bundle, data, scans = setup
    bad = data / "broken" / "xyz" / "000.tiff"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"II*\0 not really a tiff")
    out = tmp_path / "out"
    res = invoke([data, "--model", bundle, "--out", out])
    assert res.exit_code == 1, res.output
    assert "broken" in res.output and "error" in res.output
    assert "scored 2, skipped 0 (already done), failed 1" in res.output
    assert (out / "good_000_map.tiff").exists() and not (out / "broken_000_map.tiff").exists()


def test_error_lines_print_brackets_literally(setup):
    tmp_path, bundle, data, _ = setup
    bad = data / "[broken]" / "xyz" / "000.tiff"  # rich would read "[broken]" as markup
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"II*\0 not really a tiff")
    res = invoke([bad.parent, "--model", bundle, "--out", tmp_path / "out"])
    assert res.exit_code == 1, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "[broken]" in errors[0], res.output


def test_category_finds_the_run_folders_bundle(setup):
    tmp_path, _, _, scans = setup
    make_bundle(tmp_path / "runs" / "toy" / "bundle")
    res = invoke([scans[0], "--category", "toy", "--workdir", tmp_path / "runs", "--out", tmp_path / "o"])
    assert res.exit_code == 0, res.output
    res = invoke([scans[0], "--category", "nope", "--workdir", tmp_path / "runs"])
    assert res.exit_code == 2 and "nope" in res.output and "bundle" in res.output


def test_usage_errors_exit_2(setup):
    tmp_path, bundle, _, scans = setup
    res = invoke([scans[0]])
    assert res.exit_code == 2 and "--model" in res.output
    res = invoke([tmp_path / "missing.tiff", "--model", bundle])
    assert res.exit_code == 2 and "missing.tiff: no such file or folder" in res.output
    res = invoke([scans[0], "--model", bundle, "--backend", "tensorrt"])
    assert res.exit_code == 2 and "TensorRT engine" in res.output
