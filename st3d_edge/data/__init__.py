"""Data: MVTec 3D-AD scans, synthetic data in the same layout, and teacher pretraining scenes.

- :mod:`~st3d_edge.data.mvtec` reads the real layout
  ``<root>/<category>/{train,validation,test}/<good|defect>/{xyz,rgb,gt}/NNN.{tiff,png}``.
- :mod:`~st3d_edge.data.plane` optionally removes the background plane (off by default, as in
  the paper).
- :mod:`~st3d_edge.data.synthetic` writes that layout from parametric parts
  (:mod:`~st3d_edge.data.shapes`) with defects (:mod:`~st3d_edge.data.defects`) seen by a virtual
  structured-light camera (:mod:`~st3d_edge.data.camera`), with pixel-exact ground truth.
- :mod:`~st3d_edge.data.scenes` builds the paper's pretraining scenes (section 4.1) from
  ModelNet10 meshes or procedural shapes (needs trimesh, the ``train`` extra).

Nothing here imports torch; trimesh is imported only inside the scene builder.
"""
