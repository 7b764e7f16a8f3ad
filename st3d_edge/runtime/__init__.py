"""st3d_edge.runtime"""
