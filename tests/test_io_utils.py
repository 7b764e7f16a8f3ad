"""Atomic writes: the umask decides the modes, durable writes land, temporaries of dead writers go."""

from __future__ import annotations

import os

import pytest

from st3d_edge.io_utils import atomic_dir, remove_stale_temporaries, write_json_atomic, write_text_atomic


@pytest.fixture()
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_files_and_folders_follow_the_umask(tmp_path, umask_027):
    path = write_text_atomic(tmp_path / "a.txt", "x", durable=True)
    assert path.stat().st_mode & 0o777 == 0o640
    with atomic_dir(tmp_path / "bundle", durable=True) as tmp:
        write_json_atomic(tmp / "manifest.json", {"a": 1})
    assert (tmp_path / "bundle").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "bundle" / "manifest.json").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "bundle"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "a.txt", {"x": object()})
    assert (tmp_path / "a.txt").read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_only_temporaries_of_dead_processes_are_removed(tmp_path):
    dead_file = tmp_path / ".map.tiff.999999999.abc.tmp"
    dead_dir = tmp_path / ".bundle.999999999.abc.tmp"
    mine = tmp_path / f".map.tiff.{os.getpid()}.abc.tmp"
    other = tmp_path / ".hidden.tmp"  # not one of ours: no pid in the name
    dead_file.write_text("x")
    dead_dir.mkdir()
    (dead_dir / "model.onnx").write_text("x")
    mine.write_text("x")
    other.write_text("x")
    assert sorted(p.name for p in remove_stale_temporaries(tmp_path)) == sorted(
        [dead_file.name, dead_dir.name]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])
