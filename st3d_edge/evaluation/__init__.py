"""Evaluation on MVTec 3D-AD's protocol (paper section 4.1), and a geometry-only peer baseline.

- :mod:`~st3d_edge.evaluation.harmonic`: harmonic interpolation of point scores to every pixel.
- :mod:`~st3d_edge.evaluation.pro`: PRO curve and normalised AU-PRO, as MVTec's own script.
- :mod:`~st3d_edge.evaluation.auroc`: image-level AUROC (Mann-Whitney, ties count one half).
- :mod:`~st3d_edge.evaluation.maps`: full-resolution anomaly maps and their TIFF layout.
- :mod:`~st3d_edge.evaluation.runner`: a category's test split through any point scorer.
- :mod:`~st3d_edge.evaluation.report`: per-category results, mean, JSON/CSV, AU-PRO-vs-limit PNG.
- :mod:`~st3d_edge.evaluation.deployed`: an export bundle's graphs or engine through the runtime pipeline.
- :mod:`~st3d_edge.evaluation.btf`: the "Back to the Feature" FPFH + memory-bank baseline.

The metric modules are numpy/scipy only; torch enters only through the runner's model scorer.
"""
