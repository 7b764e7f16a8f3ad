"""The lean edge runtime: scan TIFF in, anomaly map, image score, verdict and stage times out.

No torch anywhere under this package (a test imports it with torch blocked); onnxruntime,
TensorRT and numba.cuda are imported inside the functions that use them.

* :mod:`~st3d_edge.runtime.pipeline` - ``ScanScorer(bundle, backend, geometry).score(scan)``
* :mod:`~st3d_edge.runtime.geometry_backend` - sampling, kNN and fill (CPU; CUDA in ``cuda/``)
* :mod:`~st3d_edge.runtime.backends` - onnxruntime and TensorRT, ``select_backend``
* :mod:`~st3d_edge.runtime.outputs` - map TIFF, heatmap PNG, PLY, results.jsonl
* :mod:`~st3d_edge.runtime.timing`, :mod:`~st3d_edge.runtime.memory` - what ``bench`` reports
* :mod:`~st3d_edge.runtime.bundle` - the export bundle's manifest (owned by the export side),
  ``load_bundle`` and ``rewrite_manifest``; :mod:`~st3d_edge.runtime.manifest_checks` its field
  checks; :mod:`~st3d_edge.runtime.signing` Ed25519 signatures and trusted keys
* :mod:`~st3d_edge.runtime.scan_checks` - scans the model cannot judge (range, units, NaN)
"""
