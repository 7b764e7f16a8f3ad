"""st3d-edge: 3D Student-Teacher (3D-ST) anomaly detection for 3D scans, from training to the edge.

The Python API, imported on first use so that ``import st3d_edge`` stays light and the edge
side never pulls torch: :class:`Detector` (edge, no torch; ``st3d_edge.runtime.detector``),
:func:`calibrate_bundle` (edge, no torch; ``st3d_edge.calibration.deployed``) and
:func:`train_detector` (workstation, torch; ``st3d_edge.train.api``).
"""

__version__ = "0.1.0"

_API = {
    "Detector": "st3d_edge.runtime.detector",
    "calibrate_bundle": "st3d_edge.calibration.deployed",
    "train_detector": "st3d_edge.train.api",
}


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'st3d_edge' has no attribute {name!r}")
