"""The malloc setting that keeps freed memory for the next scan (run in a child process: it is
process-wide)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from st3d_edge.runtime.allocator import keep_freed_memory

    def faults_of_a_fresh_block():
        block = np.empty(48 * 2**20, dtype=np.uint8)  # over glibc's largest mmap threshold
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block[::4096] = 1
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults_of_a_fresh_block()
    if sys.argv[1] == "keep":
        assert keep_freed_memory() is True
        faults_of_a_fresh_block()  # the first block after the setting comes from the heap
    print(min(faults_of_a_fresh_block() for _ in range(3)))
    """
)


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")
def test_a_freed_block_is_reused_without_page_faults():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the setting is glibc's")
    system, keep = _faults("system"), _faults("keep")
    assert system > 10  # each new block is a fresh mapping, faulted in again (huge pages or not)
    assert keep * 10 < system


def test_the_detector_leaves_malloc_alone_when_asked(monkeypatch, tmp_path):
    from st3d_edge.runtime import allocator, detector

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1))
    monkeypatch.setattr(detector, "build_scorer", lambda *a: (None, None))
    detector.Detector(tmp_path, keep_freed_memory=False)
    assert calls == []
    detector.Detector(tmp_path)
    assert calls == [1]
