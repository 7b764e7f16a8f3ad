"""Slow, obvious references and small inputs for the export tests (numpy, float64)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from st3d_edge.export.weights import LEAKY_SLOPE, BlockWeights, Dense, NetWeights

# onnxruntime against torch, or float64 against float32, on whole networks: the errors of
# eight LFA layers add up, so this is looser than FLOAT32_DIFFERENT_KERNELS per op. The
# scores' relative error bound (bundle_writer.PARITY_LIMIT, 1e-4) is asserted separately.
NETWORK_FLOAT32 = dict(rtol=1e-4, atol=1e-4)


def random_dense(rng: np.random.Generator, n_in: int, n_out: int) -> Dense:
    scale = 1.0 / np.sqrt(n_in)
    return Dense(
        rng.uniform(-scale, scale, (n_in, n_out)).astype(np.float32),
        rng.uniform(-scale, scale, n_out).astype(np.float32),
    )


def random_net(rng: np.random.Generator, d: int = 16, blocks: int = 2) -> NetWeights:
    q, h = d // 4, d // 2
    return NetWeights(
        blocks=tuple(
            BlockWeights(
                pre=random_dense(rng, d, q),
                geo1=random_dense(rng, 4, q),
                geo2=random_dense(rng, 4, h),
                post=random_dense(rng, d, d),
                skip=random_dense(rng, d, d),
            )
            for _ in range(blocks)
        ),
        head1=random_dense(rng, d, d),
        head2=random_dense(rng, d, d),
    )


def cloud_and_knn(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A wavy surface patch in metres-like units and its kNN graph (self first)."""
    uv = rng.uniform(-0.05, 0.05, (n, 2))
    z = 0.01 * np.sin(60 * uv[:, 0]) * np.cos(40 * uv[:, 1]) + rng.normal(0, 1e-4, n)
    points = np.column_stack([uv, z]).astype(np.float32)
    _, knn = cKDTree(points).query(points, k)
    knn[:, 0] = np.arange(n)  # self first even if a duplicate point came first
    return points, knn.astype(np.int32)


def _leaky(x):
    return np.where(x >= 0, x, LEAKY_SLOPE * x)


def _mlp(layer: Dense, x):
    return _leaky(x @ layer.weight.astype(np.float64) + layer.bias.astype(np.float64))


def reference_features(net: NetWeights, points, knn) -> np.ndarray:
    """The network exactly as the paper describes it, point by point gather, float64."""
    x = np.asarray(points, np.float64)
    knn = np.asarray(knn)
    diff = x[:, None, :] - x[knn]  # (n, k, 3): p - p_j
    g = np.concatenate([diff, np.linalg.norm(diff, axis=-1, keepdims=True)], axis=-1)
    f = np.zeros((len(x), net.d))
    for block in net.blocks:
        h = _mlp(block.pre, f)
        for geo in (block.geo1, block.geo2):
            h = np.concatenate([_mlp(geo, g), h[knn]], axis=-1).mean(axis=1)
        f = _mlp(block.post, h) + _mlp(block.skip, f)
    f = _mlp(net.head1, f)
    return f @ net.head2.weight.astype(np.float64) + net.head2.bias.astype(np.float64)


def reference_scores(teacher, student, s, mu, sigma, points, knn) -> np.ndarray:
    x = np.asarray(points, np.float64) / s
    f_t = reference_features(teacher, x, knn)
    f_s = reference_features(student, x, knn)
    return np.linalg.norm(f_s - (f_t - mu) / sigma, axis=1)


def write_trained_category(run_dir, *, preset: str = "tiny", seed: int = 0, thresholds: bool = True):
    """A run folder as `st3d-edge train` leaves it, with random weights (no training)."""
    import torch

    from st3d_edge.calibration.stats import save_stats
    from st3d_edge.calibration.thresholds import Thresholds, save_thresholds
    from st3d_edge.config import get_preset
    from st3d_edge.train.checkpoint import save_checkpoint
    from st3d_edge.train.common import build_net
    from st3d_edge.train.runfolder import run_config, start_run

    config = get_preset(preset)
    start_run(run_dir, run_config(config, kind="category"), resume=False, overwrite=True)
    rng = np.random.default_rng(seed)
    for i, name in enumerate(("teacher.pt", "student.pt")):
        net = build_net(config.model, seed=seed + i)
        save_checkpoint(run_dir / name, {"model": net.state_dict()})
    d = config.model.d
    save_stats(run_dir / "stats", 0.004, rng.normal(0, 0.3, d), rng.uniform(0.5, 2.0, d))
    if thresholds:
        save_thresholds(run_dir / "thresholds.json", Thresholds(pixel=1.5, image=2.5, validation_scans=3))
    if config.model.scoring == "fused":
        write_geometric_bank(run_dir, 0.004, seed)
    torch.manual_seed(seed)
    return run_dir


def write_geometric_bank(run_dir, s: float, seed: int = 0):
    """The fused scoring's bank and standardisation, fitted on two synthetic patches of spacing s."""
    from st3d_edge.calibration.fusion import Fusion
    from st3d_edge.calibration.geometric import GeometricScore, GeometricSettings
    from st3d_edge.calibration.scoring import save_scoring

    rng = np.random.default_rng(seed)
    patches = []
    for _ in range(2):
        uv = rng.uniform(-20 * s, 20 * s, (600, 2))
        z = 1.0 + 0.05 * np.sin(uv[:, 0] / (5 * s)) * s * 10 + rng.normal(0, 0.05 * s, 600)
        patches.append(np.column_stack([uv, z]).astype(np.float32))
    geometric = GeometricScore.fit(patches, GeometricSettings(s=s), fraction=0.25)
    save_scoring(run_dir, geometric, Fusion(0.5, 0.2, 20.0, 10.0))
