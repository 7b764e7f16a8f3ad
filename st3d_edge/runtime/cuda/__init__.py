"""GPU geometry for the edge runtime (numba.cuda): FPS, kNN and the pixel fill, device-resident.

Importing this package does not import numba: the kernels are compiled on first use, so the
edge install without the ``gpu`` extra still imports ``st3d_edge.runtime`` cleanly.
"""

from st3d_edge.runtime.cuda.geometry import CudaGeometry, device_pointer

__all__ = ["CudaGeometry", "device_pointer"]
