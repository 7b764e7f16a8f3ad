from __future__ import annotations

import json
import sys

import pytest
import torch
from typer.testing import CliRunner

from st3d_edge.cli import app
from tests.train_data import CATEGORY, write_tiny_dataset

TINY = ["--preset", "tiny", "--device", "cpu", "--n", "128", "--epochs", "1"]
TINY_TORCHRUN_SPELLING = ["--preset", "tiny", "--device", "cpu", "--points", "128", "--epochs", "1"]


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("cli") / "runs"
    res = _invoke("pretrain", *TINY, "--scenes", "2", "--val-scenes", "1", "--workdir", str(work))
    assert res.exit_code == 0, res.output
    return work, res


def test_pretrain_command(workdir):
    work, res = workdir
    run = work / "teacher"
    for name in ("config.json", "teacher.pt", "last.pt", "metrics.jsonl", "scale.json"):
        assert (run / name).is_file()
        assert f"wrote {run / name}" in res.stderr.replace("\n", "")
    assert "teacher: best validation loss" in res.stdout
    config = json.loads((run / "config.json").read_text())
    assert (
        config["pretrain"]["scenes_train"] == 2 and config["model"]["n"] == 128 and config["name"] == "tiny"
    )


def test_pretrain_refuses_to_overwrite_and_resumes(workdir):
    work, _ = workdir
    res = _invoke("pretrain", *TINY, "--scenes", "2", "--val-scenes", "1", "--workdir", str(work))
    assert res.exit_code == 2
    assert "already holds a training run; pass --resume" in res.stderr
    res = _invoke("pretrain", "--workdir", str(work), "--resume", "--epochs", "2", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert len((work / "teacher" / "metrics.jsonl").read_text().splitlines()) == 2


def test_train_command(workdir, tmp_path):
    work, _ = workdir
    data = write_tiny_dataset(tmp_path / "data")
    args = ["--data", str(data), "--category", CATEGORY, *TINY_TORCHRUN_SPELLING, "--workdir", str(work)]
    res = _invoke("train", *args)
    assert res.exit_code == 0, res.output
    run = work / CATEGORY
    assert json.loads((run / "config.json").read_text())["model"]["n"] == 128
    for name in ("student.pt", "teacher.pt", "thresholds.json", "stats/mu.npy", "metrics.jsonl"):
        assert (run / name).is_file()
    assert f"{CATEGORY}: best validation loss" in res.stdout and "thresholds pixel" in res.stdout
    assert "wrote" in res.stderr


def test_train_dim_matches_a_teacher_pretrained_with_dim(workdir, tmp_path):
    work, _ = workdir
    pretrain = ["pretrain", *TINY, "--dim", "8", "--scenes", "2", "--val-scenes", "1"]
    res = _invoke(*pretrain, "--workdir", str(work), "--name", "teacher-d8")
    assert res.exit_code == 0, res.output
    data = write_tiny_dataset(tmp_path / "data")
    args = ["--data", str(data), "--category", CATEGORY, "--workdir", str(work), "--teacher"]
    args += [str(work / "teacher-d8"), "--name", "student-d8"]
    res = _invoke("train", *args, *TINY)
    assert res.exit_code == 2 and "teacher was pretrained with d=8, this run asks for 16" in res.stderr
    res = _invoke("train", *args, *TINY_TORCHRUN_SPELLING, "--overwrite", "--dim", "8")
    assert res.exit_code == 0, res.output
    assert json.loads((work / "student-d8" / "config.json").read_text())["model"]["d"] == 8
    res = _invoke("train", *args, *TINY, "--overwrite", "--d", "0")
    assert res.exit_code == 2 and "--d" in res.output


def test_bad_input_exits_2_with_one_line(workdir, tmp_path):
    work, _ = workdir
    res = _invoke("train", "--data", str(tmp_path), "--category", "nope", *TINY, "--workdir", str(work))
    assert res.exit_code == 2 and "nope: category folder not found" in res.stderr
    res = _invoke("pretrain", "--preset", "tiny", "--epochs", "0", "--workdir", str(tmp_path))
    assert res.exit_code == 2 and "--epochs" in res.output
    res = _invoke("pretrain", "--preset", "huge")
    assert res.exit_code == 2
    (tmp_path / CATEGORY).mkdir()
    res = _invoke(
        "train", "--data", str(tmp_path), "--category", CATEGORY, *TINY, "--workdir", str(tmp_path / "w")
    )
    assert res.exit_code == 2 and "split 'train' not found" in res.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_gpu_is_a_user_error(tmp_path):
    res = _invoke("pretrain", "--preset", "tiny", "--device", "cuda", "--workdir", str(tmp_path))
    assert res.exit_code == 2 and "torch sees no CUDA GPU" in res.stderr


def test_missing_torch_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails as if not installed
    res = _invoke("pretrain", "--preset", "tiny", "--device", "cpu", "--workdir", str(tmp_path))
    assert res.exit_code == 2 and "torch is not installed" in res.stderr and "st3d-edge[train]" in res.stderr


def _finished_looking_run(run, data):
    from st3d_edge.config import get_preset
    from st3d_edge.train.runfolder import run_config, start_run

    preset = get_preset("tiny")
    preset.model.n = 128
    config = run_config(preset, kind="category", data=str(data.resolve()))
    start_run(run, config, resume=False, overwrite=False)
    for name in ("last.pt", "student.pt", "thresholds.json"):
        (run / name).write_bytes(b"the old run's " + name.encode())


def test_overwrite_checks_first_and_keeps_the_old_run_on_failure(workdir, tmp_path):
    work, _ = workdir
    data = write_tiny_dataset(tmp_path / "data")
    run = tmp_path / "runs" / CATEGORY
    _finished_looking_run(run, data)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    args = ["--data", str(data), "--category", CATEGORY, *TINY, "--workdir", str(tmp_path / "runs")]
    res = _invoke("train", *args, "--overwrite", "--teacher", str(tmp_path / "no-teacher"))
    assert res.exit_code == 2 and "no pretrained teacher here" in res.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_resume_with_other_options_is_refused(workdir, tmp_path):
    data = write_tiny_dataset(tmp_path / "data")
    _finished_looking_run(tmp_path / "runs" / CATEGORY, data)
    args = ["--data", str(data), "--category", CATEGORY, "--workdir", str(tmp_path / "runs"), "--resume"]
    res = _invoke("train", *args, "--n", "999", "--preset", "cpu", "--seed", "3")
    assert res.exit_code == 2, res.output
    line = res.stderr.replace("\n", "")
    assert "these options differ: name 'tiny' -> 'cpu'; model.n 128 -> 999; student.seed 0 -> 3" in line
    runs = str(tmp_path / "runs")
    res = _invoke("pretrain", "--workdir", runs, "--name", CATEGORY, "--resume", "--n", "64")
    assert res.exit_code == 2 and "model.n 128 -> 64" in res.stderr.replace("\n", "")
