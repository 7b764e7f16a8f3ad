"""st3d_edge.geometry: the CPU geometry of the pipeline, numpy and scipy only (no torch).

* :mod:`.fps`: exact FPS (numpy reference) and fpsample's bucket FPS (``fps`` without numba).
* :mod:`.grid_fps`: exact FPS on a uniform grid in numba (the ``fps`` sampler).
* :mod:`.tiles`: the tiled sampler: spatial tiles of bounded size, per-tile FPS, a global
  second pass for the seams; :func:`.tiles.tile_plan` is shared with the GPU kernels.
* :mod:`.sampling`: samplers by name (``fps``, ``fps-exact``, ``fps-tiled``), covering radius.
* :mod:`.knn`: kNN graph by cKDTree (self in column 0) and its brute-force reference.
* :mod:`.receptive_field`: R(p) of eq. (2).
* :mod:`.scale`: the normalization scale s of eq. (4), streamed over clouds.
* :mod:`.fill`: inverse-distance fill of scores to every valid pixel.
* :mod:`.smoothing`: the image score (max of kNN-smoothed point scores).

Shape errors are programming errors and raise ValueError; the callers that read user files
turn unusable scans into :class:`st3d_edge.errors.St3dError` before they get here.
Imports of scipy and fpsample happen inside the functions, so importing this package is cheap.
"""
