"""st3d_edge.data"""
