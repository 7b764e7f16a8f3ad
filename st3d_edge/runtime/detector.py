"""The edge side's Python API: ``Detector(bundle)(scan) -> ScanResult``, without torch.

```python
from st3d_edge import Detector
det = Detector("st3d-runs/tire/bundle", backend="auto")
result = det("scan.tiff")        # or a PLY/PCD/NPY/XYZ/depth path, an H x W x 3 or N x 3 array
result.image_score, result.verdict, result.anomaly_map, result.point_scores, result.ms
```

A path is read by :mod:`st3d_edge.data.readers` (the format by its extension, ``units`` and
``intrinsics`` as there); an array is taken as coordinates in ``units``. ``anomaly_map`` is the
H x W map of an organized scan and None for an unorganized one, whose map is ``point_scores``
(one per valid point, in the order the reader returns them). ``st3d-edge infer`` is a thin
caller of this class. A Detector sets the process's malloc to keep freed memory for the next
scan (:mod:`st3d_edge.runtime.allocator`; ``keep_freed_memory=False`` leaves it alone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from st3d_edge.data.mvtec import Scan
from st3d_edge.runtime.pipeline import ScanResult, build_scorer, describe_pick


class Detector:
    """A verified bundle with its inference and geometry backends, ready to score scans."""

    def __init__(
        self,
        bundle: str | Path,
        backend: str = "auto",
        geometry: str = "auto",
        *,
        threads: int = 0,
        units: str = "m",
        intrinsics: Any = None,
        trust: list[Path] | None = None,
        keep_freed_memory: bool = True,
    ) -> None:
        from st3d_edge.data.readers import units_factor
        from st3d_edge.runtime import allocator

        units_factor(units)  # refuse unknown units now, not at the first scan
        if keep_freed_memory:  # process-wide: see st3d_edge.runtime.allocator
            allocator.keep_freed_memory()
        self.scorer, self.selection = build_scorer(bundle, backend, geometry, threads, trust)
        self.units = units
        self.intrinsics = intrinsics

    @property
    def bundle(self) -> Any:
        return self.scorer.bundle

    @property
    def image_threshold(self) -> float | None:
        return self.scorer.image_threshold

    @property
    def pixel_threshold(self) -> float | None:
        return self.scorer.pixel_threshold

    def describe(self) -> str:
        """Which backends were picked and why (one line)."""
        return describe_pick(self.scorer, self.selection)

    def __call__(
        self,
        scan: str | Path | np.ndarray | Scan,
        *,
        units: str | None = None,
        intrinsics: Any = None,
        gt_path: str | Path | None = None,
    ) -> ScanResult:
        """Score one scan: a file path, an (H, W, 3) or (N, 3) array, or a read ``Scan``."""
        units = units or self.units
        if isinstance(scan, Scan):
            return self.scorer.score(scan)
        if isinstance(scan, str | Path):
            return self.scorer.score_file(
                scan, gt_path, units=units, intrinsics=intrinsics or self.intrinsics
            )
        from st3d_edge.data.readers import array_scan

        return self.scorer.score(array_scan(scan, units=units, gt_path=gt_path))
