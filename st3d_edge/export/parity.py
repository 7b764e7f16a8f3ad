"""Parity between the exported graph (onnxruntime, CPU) and the training module (PyTorch).

Relative error, as the design's parity bound (``bundle_writer.PARITY_LIMIT``, 1e-4) is stated: per point
``|a - b| / max(|b|, floor)`` with ``floor`` = 1e-3 of the median reference score, so that
points whose score is almost exactly zero (a student that matches the teacher perfectly)
do not turn a rounding difference into a huge ratio; the maximum over points is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from st3d_edge.errors import MissingExtraError


def relative_error(actual, expected) -> float:
    """Max over points of |actual - expected| / max(|expected|, 1e-3 * median |expected|)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {e.shape}")
    if e.size == 0:
        return 0.0
    floor = max(1e-3 * float(np.median(np.abs(e))), np.finfo(np.float32).tiny)
    return float(np.max(np.abs(a - e) / np.maximum(np.abs(e), floor)))


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
