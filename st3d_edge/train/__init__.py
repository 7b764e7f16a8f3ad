"""st3d_edge.train"""
