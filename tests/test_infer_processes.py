"""`st3d-edge infer` in real subprocesses: Ctrl-C many times at random moments, and two
processes writing the same --out.

Python's KeyboardInterrupt arriving inside scipy's multi-threaded cKDTree query used to crash
the interpreter now and then; infer must instead finish the scan in progress, record it, and
exit with 130, every time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from tests.runtime_fixtures import organized_cloud
from tests.test_infer_cli import make_bundle, write_scan

ROUNDS = 8
SCANS = 60


def _start(bundle, scans, out, *more):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", "from st3d_edge.cli import main; main()", "infer", str(scans)]
    command += [*map(str, more), "--model", str(bundle), "--out", str(out), "--geometry", "cpu"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def test_ctrl_c_finishes_the_scan_in_progress_and_exits_130(tmp_path):  # and SIGTERM, 143
    scans = tmp_path / "scans"
    for i in range(SCANS):
        write_scan(scans / f"{i:03d}.tiff", organized_cloud(120, 120, seed=i, bump=i % 2 == 0))
    # n = 2048 of ~13000 points: FPS, a threaded kNN and a threaded fill on every scan
    bundle = make_bundle(tmp_path / "bundle", n=2048, s=0.013)
    rng = np.random.default_rng(0)
    # a service manager stops the process with SIGTERM: the same, with exit code 143
    signals = [signal.SIGINT] * ROUNDS + [signal.SIGTERM]
    for round_, signum in enumerate(signals):
        out = tmp_path / f"out{round_}"
        proc = _start(bundle, scans, out)
        first = proc.stdout.readline()  # the first scored scan: the loop is running
        assert first, proc.communicate()[1]
        time.sleep(float(rng.uniform(0.0, 0.3)))
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 128 + signum, (proc.returncode, stderr[-2000:])
        assert "stopping after the current scan" in stderr
        assert f"interrupted by {signal.Signals(signum).name}" in stderr
        printed = 1 + sum(1 for line in stdout.splitlines() if line.strip())
        lines = (out / "results.jsonl").read_text().splitlines()
        assert len(lines) == printed < SCANS  # every scan it finished was recorded, no more
        assert all(json.loads(line)["verdict"] for line in lines)
        assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_two_processes_with_one_out_folder_lose_no_record(tmp_path):
    scans = []
    for i in range(24):
        scans.append(write_scan(tmp_path / "scans" / f"{i:03d}.tiff", organized_cloud(40, 40, seed=i)))
    bundle = make_bundle(tmp_path / "bundle", n=512, s=0.04)
    out = tmp_path / "out"
    procs = [_start(bundle, scans[i], out, *scans[i + 2 :: 2]) for i in range(2)]  # interleaved halves
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
    files = [json.loads(line)["file"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(files) == sorted(str(p.resolve()) for p in scans)
