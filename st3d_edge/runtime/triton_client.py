"""The scorer network on a Triton Inference Server, the rest of the pipeline in the client.

The bundle's Triton repository (``export --format triton|all``) serves only the network:
``points (n,3) FP32, knn (n,k) INT32 -> scores (n,) FP32``. A client does what ``infer`` does
around it: read the scan, sample n points with the bundle's sampler, build the kNN graph, send
both, then fuse the scores with the geometric bank when the bundle scores ``fused``, fill every
valid pixel, and take the image score and the verdict. :class:`TritonBackend` is the network
half as an inference backend, so ``runtime.pipeline.ScanScorer`` does all of that::

    from st3d_edge.runtime.bundle import load_bundle
    from st3d_edge.runtime.pipeline import ScanScorer
    from st3d_edge.runtime.triton_client import TritonBackend

    bundle = load_bundle("bundle")
    scorer = ScanScorer(bundle, TritonBackend("localhost:8000", bundle))
    result = scorer.score_file("scan.tiff")  # map, image score, verdict, per-stage ms

Needs ``tritonclient[http]`` (not an extra of this package; install it beside ``runtime``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from st3d_edge.errors import St3dError
from st3d_edge.runtime.bundle import INPUT_NAMES, OUTPUT_NAME, Bundle


class TritonBackend:
    """``run(points, knn) -> scores`` by one HTTP request to the bundle's Triton model."""

    on_device = False

    def __init__(self, url: str, bundle: Bundle) -> None:
        try:
            import tritonclient.http as http
        except ImportError:
            raise St3dError("tritonclient is not installed: pip install 'tritonclient[http]'") from None
        from st3d_edge.export.triton import model_name

        self._http = http
        self.client = http.InferenceServerClient(url)
        self.model = model_name(bundle.category)
        self.name = "triton"
        self.device = f"{url}/{self.model}"

    def run(self, points: Any, knn: Any) -> np.ndarray:
        arrays = (np.ascontiguousarray(points, np.float32), np.ascontiguousarray(knn, np.int32))
        inputs = []
        for name, array, dtype in zip(INPUT_NAMES, arrays, ("FP32", "INT32"), strict=True):
            tensor = self._http.InferInput(name, list(array.shape), dtype)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [self._http.InferRequestedOutput(OUTPUT_NAME)]
        return self.client.infer(self.model, inputs, outputs=outputs).as_numpy(OUTPUT_NAME)
