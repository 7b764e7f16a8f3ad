"""st3d_edge.export"""
