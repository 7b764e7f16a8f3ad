"""`st3d-edge infer` on a production line: wrong answers become errors, results are never lost,
duplicated or stale, and every OS problem is one line (rows of docs/RELIABILITY.md)."""

from __future__ import annotations

import errno
import json
import os
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from st3d_edge.cli import app
from st3d_edge.runtime.signing import generate_keypair
from tests.runtime_fixtures import organized_cloud
from tests.test_infer_cli import make_bundle, write_scan


@pytest.fixture()
def line(tmp_path):
    bundle = make_bundle(tmp_path / "bundle")
    scans = tmp_path / "scans"
    good = write_scan(scans / "a.tiff", organized_cloud(16, 18, seed=2, bump=False))
    return tmp_path, bundle, scans, good


def invoke(*args):
    return CliRunner().invoke(app, ["infer", *map(str, args)])


def records(out):
    lines = (out / "results.jsonl").read_text().splitlines()
    return [json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in results.jsonl")) for line in lines]


def error_lines(res):
    return [line for line in res.output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda xyz: xyz.__setitem__((5, 7), 1e18), "coordinates out of range for this bundle: 1 pixel"),
        (lambda xyz: xyz.__imul__(1e30), "coordinates out of range for this bundle"),
        (
            lambda xyz: xyz.__imul__(1000.0),
            r"is 1\.\d+e\+03 times the model's .*the units look wrong \(millimetres read as metres\?\)",
        ),
        (
            lambda xyz: xyz.__imul__(0.001),
            r"is 0\.00\d+ times the model's .*the units look wrong \(metres read as millimetres\?\)",
        ),
    ],
)
def test_out_of_range_or_wrong_unit_scan_is_rejected_and_recorded(line, spoil, message):
    tmp_path, bundle, scans, _ = line
    xyz = organized_cloud(16, 18, seed=3, bump=False)
    spoil(xyz)
    write_scan(scans / "b.tiff", xyz)
    out = tmp_path / "out"
    res = invoke(scans, "--model", bundle, "--out", out)
    assert res.exit_code == 1, res.output
    assert len(error_lines(res)) == 1 and "b.tiff" in error_lines(res)[0]
    by_file = {os.path.basename(r["file"]): r for r in records(out)}  # strict JSON, no NaN
    assert by_file["a.tiff"]["verdict"] in ("good", "anomalous")
    assert re.search(message, by_file["b.tiff"]["error"]), by_file["b.tiff"]["error"]
    assert not (out / "b_map.tiff").exists()


def test_manifest_k_that_differs_from_the_graph_is_refused_at_load(line):
    tmp_path, _, scans, _ = line
    bundle = make_bundle(tmp_path / "k8", k=8, graph_k=6)
    res = invoke(scans, "--model", bundle, "--out", tmp_path / "out")
    assert res.exit_code == 2 and "field k: 8, but the model's knn input takes k = 6" in res.output
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_every_record_has_provenance_and_failures_are_recorded(line):
    tmp_path, bundle, scans, _ = line
    (scans / "broken.tiff").write_bytes(b"II*\0 not a tiff")
    out = tmp_path / "out"
    res = invoke(scans, "--model", bundle, "--out", out)
    assert res.exit_code == 1
    manifest = json.loads((bundle / "manifest.json").read_text())
    for record in records(out):
        assert record["bundle_id"] == manifest["manifest_sha256"]
        assert record["category"] == "toy" and record["thresholds"] == {"image": 0.05, "pixel": 0.05}
        assert record["st3d_edge"] and record["time"].endswith("+00:00")
    by_file = {os.path.basename(r["file"]): r for r in records(out)}
    assert "not a readable TIFF" in by_file["broken.tiff"]["error"]
    assert set(by_file["a.tiff"]["scan"]) == {"size", "mtime_ns", "sha256"}


def test_a_changed_scan_or_another_bundle_is_scored_again(line):
    tmp_path, bundle, scans, good = line
    out = tmp_path / "out"
    assert invoke(scans, "--model", bundle, "--out", out).exit_code == 0
    assert "scored 0, skipped 1" in invoke(scans, "--model", bundle, "--out", out).output
    stat = good.stat()
    write_scan(good, organized_cloud(16, 18, seed=9, bump=True))
    os.utime(good, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: the hash still tells
    assert "scored 1, skipped 0" in invoke(scans, "--model", bundle, "--out", out).output
    other = make_bundle(tmp_path / "other", thresholds={"image": 0.07, "pixel": 0.07})
    assert "scored 1, skipped 0" in invoke(scans, "--model", other, "--out", out).output
    assert len(records(out)) == 3


def test_infer_skips_its_own_outputs(line):
    tmp_path, bundle, scans, _ = line
    out = scans / "results"  # --out inside the scanned folder
    assert invoke(scans, "--model", bundle, "--out", out).exit_code == 0
    (scans / "copied_map.tiff").write_bytes((out / "a_map.tiff").read_bytes())
    res = invoke(scans, "--model", bundle, "--out", out)
    assert res.exit_code == 0 and "scored 0, skipped 1 (already done), failed 0" in res.output
    res = invoke(out, "--model", bundle, "--out", out)
    assert res.exit_code == 2 and "only infer's own outputs" in res.output


def test_stale_temporaries_go_and_outputs_follow_the_umask(line):
    tmp_path, bundle, scans, _ = line
    out = tmp_path / "out"
    out.mkdir()
    dead = out / ".a_map.tiff.999999999.x1y2.tmp"  # no such pid
    live = out / f".a_map.tiff.{os.getpid()}.x1y2.tmp"  # a writer still at work
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    old = os.umask(0o027)
    try:
        assert invoke(scans, "--model", bundle, "--out", out).exit_code == 0
    finally:
        os.umask(old)
    assert not dead.exists() and live.exists()
    for name in ("a_map.tiff", "a_heatmap.png", "results.jsonl"):
        assert (out / name).stat().st_mode & 0o777 == 0o640, name


@pytest.mark.parametrize("case", ["out-is-a-file", "results-is-a-folder", "foreign-lines", "disk-full"])
def test_os_problems_are_one_line_and_exit_2(line, case, monkeypatch):
    tmp_path, bundle, scans, _ = line
    out = tmp_path / "out"
    if case == "out-is-a-file":
        out.write_text("x")
    elif case == "results-is-a-folder":
        (out / "results.jsonl").mkdir(parents=True)
    elif case == "foreign-lines":
        out.mkdir()
        (out / "results.jsonl").write_text("scan,score\n")
    else:
        from st3d_edge.runtime import outputs

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / "a_map.tiff"))

        monkeypatch.setattr(outputs, "write_map_tiff", full)
    res = invoke(scans, "--model", bundle, "--out", out)
    assert res.exit_code == 2, res.output
    assert len(error_lines(res)) == 1 and "Traceback" not in res.output
    expected = {
        "out-is-a-file": "is a file, not a folder",
        "results-is-a-folder": "is a folder, not a results file",
        "foreign-lines": "line 1 is not a results record",
        "disk-full": "a_map.tiff: No space left on device",
    }[case]
    assert expected in error_lines(res)[0]


def test_trust_option_refuses_unsigned_and_accepts_signed(line):
    tmp_path, bundle, scans, _ = line
    generate_keypair(tmp_path / "k.key", tmp_path / "k.pub")
    res = invoke(scans, "--model", bundle, "--out", tmp_path / "o1", "--trust", tmp_path / "k.pub")
    assert res.exit_code == 2 and "is not signed" in res.output
    signed = make_bundle(tmp_path / "signed", signing_key=tmp_path / "k.key")
    res = invoke(scans, "--model", signed, "--out", tmp_path / "o2", "--trust", tmp_path / "k.pub")
    assert res.exit_code == 0, res.output


def test_decompression_bomb_is_refused_before_decoding(line, monkeypatch):
    import tifffile

    from st3d_edge.data import mvtec

    tmp_path, bundle, scans, _ = line
    tifffile.imwrite(
        scans / "bomb.tiff", np.zeros((600, 600, 3), np.float32), compression="zlib", photometric="rgb"
    )
    assert (scans / "bomb.tiff").stat().st_size < 100_000
    monkeypatch.setattr(mvtec, "MAX_IMAGE_PIXELS", 300 * 300)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", lambda *a, **k: pytest.fail("decoded the bomb"))
    res = invoke(scans / "bomb.tiff", "--model", bundle, "--out", tmp_path / "out")
    assert res.exit_code == 1 and "600 x 600 x 3 has 360000 pixels, more than the maximum 90000" in res.output
