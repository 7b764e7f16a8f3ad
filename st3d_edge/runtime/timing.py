"""Per-stage wall-clock timing of one scan, and the summary statistics the bench prints.

A stage's time is measured on the host with ``time.perf_counter``. On a GPU the stages are
asynchronous, so a geometry backend that keeps data on the device is asked to synchronize
before a stage's clock stops (``StageClock(sync=...)``); without that the time of a kernel
would be booked to whichever later stage first waits for it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from st3d_edge.runtime.memory import peak_host_rss_mb

# The order stages are reported in; a stage that did not run is left out.
STAGES = ("read", "sample", "knn", "inference", "geometric", "fill", "image_score")


class StageClock:
    """Collects milliseconds per named stage for one scan.

    With ``track_memory``, ``peak_mb`` holds the process's peak host RSS (MiB) when each stage
    ended, so a benchmark can say which stage raised the high-water mark (the stage holding the
    largest intermediates); off by default, so scoring does not read /proc at every stage.
    """

    def __init__(self, sync: Callable[[], None] | None = None, track_memory: bool = False) -> None:
        self.ms: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        self._sync = sync
        self._track_memory = track_memory

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._sync is not None:
                self._sync()
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - start) * 1e3
            if self._track_memory:
                self.peak_mb[name] = peak_host_rss_mb()

    def total(self) -> float:
        return float(sum(self.ms.values()))


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median and 90th percentile (numpy's linear interpolation) of a list of timings."""
    values = np.asarray(samples, dtype=np.float64)
    if values.size == 0:
        return {"median": float("nan"), "p90": float("nan")}
    return {"median": float(np.median(values)), "p90": float(np.percentile(values, 90))}


def summarize_runs(runs: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-stage (and ``total``) median and p90 over several scans' ``StageClock.ms`` dicts."""
    names = [s for s in STAGES if any(s in r for r in runs)]
    names += sorted({k for r in runs for k in r} - set(names))
    table = {name: summarize([r[name] for r in runs if name in r]) for name in names}
    table["total"] = summarize([sum(r.values()) for r in runs])
    return table
