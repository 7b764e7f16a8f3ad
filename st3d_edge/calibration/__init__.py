"""st3d_edge.calibration"""
