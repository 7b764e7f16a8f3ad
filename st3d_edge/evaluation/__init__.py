"""st3d_edge.evaluation"""
