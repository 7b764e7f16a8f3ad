"""st3d_edge.model"""
