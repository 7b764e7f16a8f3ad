"""st3d-edge: 3D Student-Teacher (3D-ST) anomaly detection for 3D scans, from training to the edge."""

__version__ = "0.1.0"
