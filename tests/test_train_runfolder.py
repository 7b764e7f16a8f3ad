from __future__ import annotations

import pytest

from st3d_edge.config import get_preset
from st3d_edge.errors import St3dError
from st3d_edge.train.distributed import Dist
from st3d_edge.train.runfolder import (
    check_resume,
    open_run,
    preset_of,
    read_config,
    read_metrics,
    run_config,
    start_run,
    write_metrics,
)


def test_new_run_writes_resolved_config(tmp_path):
    preset = get_preset("tiny")
    preset.model.n = 123
    config = start_run(tmp_path / "run", run_config(preset, kind="teacher"), resume=False, overwrite=False)
    assert read_config(tmp_path / "run") == config
    again = preset_of(read_config(tmp_path / "run"))
    assert again.model.n == 123 and again.name == "tiny"


def test_open_run_main_rank_starts_the_run_other_ranks_read_it(tmp_path):
    preset = get_preset("tiny")
    preset.model.n = 123
    run = tmp_path / "run"
    config, opened = open_run(run, run_config(preset, kind="teacher"), Dist(), resume=False, overwrite=False)
    assert read_config(run) == config and opened.model.n == 123
    # a non-main rank ignores the config it was given and takes the folder's own
    other = run_config(get_preset("tiny"), kind="teacher")
    config2, opened2 = open_run(run, other, Dist(rank=1, world=1), resume=False, overwrite=False)
    assert config2 == config and opened2.model.n == 123


def test_existing_run_needs_resume_or_overwrite(tmp_path):
    run = tmp_path / "run"
    config = run_config(get_preset("tiny"), kind="teacher")
    start_run(run, config, resume=False, overwrite=False)
    with pytest.raises(St3dError, match=r"run: nothing to resume: no last\.pt"):
        start_run(run, config, resume=True, overwrite=False)
    # a job that failed before its first epoch left only a config: that does not block a start
    start_run(run, config, resume=False, overwrite=False)
    (run / "cache").mkdir()
    (run / "cache" / "scene-1.npz").write_bytes(b"x")
    (run / "last.pt").write_bytes(b"x")
    with pytest.raises(St3dError, match=r"run: already holds a training run; pass --resume"):
        start_run(run, config, resume=False, overwrite=False)
    start_run(run, config, resume=False, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["cache", "config.json"]  # cache kept


def test_resume_uses_saved_config_but_may_extend_epochs(tmp_path):
    run = tmp_path / "run"
    saved = get_preset("tiny")
    start_run(run, run_config(saved, kind="category"), resume=False, overwrite=False)
    (run / "last.pt").write_bytes(b"x")
    asked = get_preset("tiny")
    asked.model.n = 999  # ignored on resume: the run continues with its own settings
    asked.student.epochs = 7
    config = start_run(run, run_config(asked, kind="category"), resume=True, overwrite=False)
    assert config["model"]["n"] == saved.model.n
    assert config["student"]["epochs"] == 7 and read_config(run)["student"]["epochs"] == 7


def test_metrics_log_roundtrip(tmp_path):
    records = [{"epoch": 1, "train_loss": 0.5, "val_loss": 0.4, "seconds": 1.0}]
    write_metrics(tmp_path, records)
    assert read_metrics(tmp_path) == records
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 1


def test_read_config_errors_name_the_file(tmp_path):
    path = tmp_path / "config.json"
    with pytest.raises(St3dError, match="config.json: file not found"):
        read_config(tmp_path)
    path.write_text("{not json")
    with pytest.raises(St3dError, match="config.json: not valid JSON"):
        read_config(tmp_path)
    path.write_text('{"pretrain": {}}')
    with pytest.raises(St3dError, match="config.json: not a run configuration"):
        read_config(tmp_path)


def test_resume_with_differing_options_is_refused_listing_them(tmp_path):
    run = tmp_path / "run"
    config = run_config(get_preset("tiny"), kind="category", data="/data/a")
    start_run(run, config, resume=False, overwrite=False)
    check_resume(run, {"model.n": 999})  # no last.pt yet: start_run reports that instead
    (run / "last.pt").write_bytes(b"x")
    check_resume(run, {"model.n": 256, "model.d": None, "job.data": "/data/a", "name": "tiny"})
    differ = r"these options differ: model.n 256 -> 999; job.data '/data/a' -> '/b'"
    with pytest.raises(St3dError, match=differ):
        check_resume(run, {"model.n": 999, "model.d": 16, "job.data": "/b"})


def test_resume_may_raise_the_epochs_but_not_lower_them(tmp_path):
    run = tmp_path / "run"
    preset = get_preset("tiny")
    start_run(run, run_config(preset, kind="teacher"), resume=False, overwrite=False)
    (run / "last.pt").write_bytes(b"x")
    planned = preset.pretrain.epochs
    check_resume(run, {"pretrain.epochs": planned})
    check_resume(run, {"pretrain.epochs": planned + 5})  # continues a finished run
    with pytest.raises(St3dError, match=rf"pretrain.epochs {planned} -> {planned - 1}"):
        check_resume(run, {"pretrain.epochs": planned - 1})
