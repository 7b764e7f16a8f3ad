"""st3d_edge.geometry"""
