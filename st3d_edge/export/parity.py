"""Parity between the exported graph (onnxruntime, CPU) and the training module (PyTorch).

Relative error, as the design's parity bound (``bundle_writer.PARITY_LIMIT``, 1e-4) is stated:
``st3d_edge.runtime.check_clouds.relative_error``, the one definition the engine check on the
device uses too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from st3d_edge.errors import MissingExtraError
from st3d_edge.runtime.check_clouds import relative_error

__all__ = ["relative_error", "onnx_session", "run_session", "torch_scores", "check_parity", "ParityResult"]


def onnx_session(model: bytes | str, threads: int = 2):
    """An onnxruntime CPU session with ``threads`` intra-op threads."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingExtraError("onnxruntime", "runtime", "needed to run the ONNX graph") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def run_session(session, points: np.ndarray, knn: np.ndarray) -> np.ndarray:
    feeds = {
        "points": np.ascontiguousarray(points, dtype=np.float32),
        "knn": np.ascontiguousarray(knn, dtype=np.int32),
    }
    return session.run(["scores"], feeds)[0]


def torch_scores(scorer, points: np.ndarray, knn: np.ndarray) -> np.ndarray:
    """Scores of ``st3d_edge.model.scorer.Scorer`` (float32, no gradients)."""
    import torch

    with torch.no_grad():
        result = scorer(
            torch.from_numpy(np.asarray(points, np.float32)), torch.from_numpy(np.asarray(knn)).long()
        )
    return result.cpu().numpy()


@dataclass(frozen=True)
class ParityResult:
    clouds: int
    points: int
    max_relative_error: float

    def as_dict(self) -> dict:
        return {"clouds": self.clouds, "points": self.points, "max_relative_error": self.max_relative_error}


def check_parity(session, scorer, clouds) -> ParityResult:
    """Run ``clouds`` (pairs of points, knn) through both and report the worst relative error."""
    worst, count, total = 0.0, 0, 0
    for points, knn in clouds:
        worst = max(
            worst, relative_error(run_session(session, points, knn), torch_scores(scorer, points, knn))
        )
        count += 1
        total += len(points)
    return ParityResult(count, total, worst)
