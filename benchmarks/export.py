"""The ONNX scorer graph in onnxruntime (CPU): the straightforward graph against the fused one.

n = 64000, k = 32, d = 64, 4 residual blocks (the paper's sizes), 2 intra-op threads. The
model is a randomly initialised, seeded teacher/student pair: the time of a network does not
depend on its weights. The cloud is a synthetic wavy surface with a bump, its kNN graph from
scipy's cKDTree (self first).

- "straightforward": ``torch.onnx.export`` of the scorer written with the model's obvious
  formulation (``st3d_edge.model.network.reference_forward``: gather the neighbours' features to
  (n, k, c), concatenate with the geometric MLP's output, average; teacher and student apart).
- "fused": ``st3d_edge.export.onnx_graph.scorer_graph``, the graph the bundle ships.

Both run in the same process, interleaved run by run, so a busy machine slows both alike;
the table gives median and p90 per graph and the ratio of medians. Then the parity of the
fused graph against PyTorch (``model.scorer.Scorer``) and the FP16 graph's drift against the
FP32 graph, both at n = 64000.

    python benchmarks/export.py [--repeats 5] [--warmup 1] [--threads 2] [--n 64000]
"""

from __future__ import annotations

import argparse
import io
import time
import warnings

import numpy as np


def surface_cloud(n: int, seed: int = 0) -> np.ndarray:
    """A 0.2 m wavy patch with a 5 mm bump, in metres, like a scan's sampled points."""
    rng = np.random.default_rng(seed)
    uv = rng.uniform(-0.1, 0.1, (n, 2))
    z = 0.01 * np.sin(30 * uv[:, 0]) * np.cos(20 * uv[:, 1])
    z += 0.005 * np.exp(-(uv**2).sum(1) / 2e-4) + rng.normal(0, 2e-5, n)
    return np.column_stack([uv, z]).astype(np.float32)


def straightforward_graph(teacher, student, s, mu, sigma, k: int):
    """The scorer exported as written with the model's gather formulation."""
    import onnx
    import torch

    from st3d_edge.model.network import reference_forward

    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.teacher, self.student = teacher, student
            self.register_buffer("s", torch.tensor(float(s)))
            self.register_buffer("mu", torch.as_tensor(mu, dtype=torch.float32))
            self.register_buffer("sigma", torch.as_tensor(sigma, dtype=torch.float32))

        def forward(self, points, knn):
            x, knn = points / self.s, knn.long()
            normalized = (reference_forward(self.teacher, x, knn) - self.mu) / self.sigma
            return torch.linalg.vector_norm(reference_forward(self.student, x, knn) - normalized, dim=1)

    m = 4 * k
    points = torch.rand(m, 3)
    knn = (torch.arange(m)[:, None] + torch.arange(k)) % m
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Plain().eval(), (points, knn.int()), buffer, input_names=["points", "knn"],
            output_names=["scores"], dynamic_axes={"points": {0: "n"}, "knn": {0: "n"}, "scores": {0: "n"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=64000)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--d", type=int, default=64)
    args = parser.parse_args()

    import torch

    from st3d_edge.export.onnx_graph import op_histogram, scorer_graph
    from st3d_edge.export.parity import onnx_session, relative_error, run_session, torch_scores
    from st3d_edge.geometry.knn import knn_indices
    from st3d_edge.geometry.scale import knn_distance_sum, scale_s
    from st3d_edge.model.network import DescriptorNet
    from st3d_edge.model.scorer import Scorer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    teacher, student = DescriptorNet(d=args.d).eval(), DescriptorNet(d=args.d).eval()
    mu = rng.normal(0, 0.1, args.d).astype(np.float32)
    sigma = rng.uniform(0.5, 2.0, args.d).astype(np.float32)
    points = surface_cloud(args.n)
    knn = knn_indices(points, args.k, workers=args.threads)
    s = scale_s([knn_distance_sum(points, knn)])
    pair = (teacher, student, s, mu, sigma)

    graphs = {
        "straightforward": straightforward_graph(*pair, args.k),
        "fused": scorer_graph(*pair, args.k),
    }
    fp16 = scorer_graph(*pair, args.k, precision="fp16")
    for name, graph in graphs.items():
        ops = op_histogram(graph)
        ops.pop("Constant", None)
        print(f"{name:<16} {sum(ops.values()):>4} nodes: " + ", ".join(f"{op} {c}" for op, c in ops.items()))
    sessions = {name: onnx_session(g.SerializeToString(), threads=args.threads) for name, g in graphs.items()}

    times: dict[str, list[float]] = {name: [] for name in sessions}
    outputs = {}
    for run in range(args.warmup + args.repeats):
        for name, session in sessions.items():
            start = time.perf_counter()
            outputs[name] = run_session(session, points, knn)
            if run >= args.warmup:
                times[name].append(time.perf_counter() - start)
    base = float(np.median(times["straightforward"]))
    print(
        f"\nonnxruntime {__import__('onnxruntime').__version__} CPU, {args.threads} intra-op threads, "
        f"n = {args.n}, k = {args.k}, d = {args.d}, {args.repeats} runs after {args.warmup} warm-up"
    )
    print(f"{'graph':<16} {'median s':>9} {'p90 s':>8} {'min s':>8} {'ratio':>7}")
    for name, values in times.items():
        median, p90 = float(np.median(values)), float(np.percentile(values, 90))
        print(f"{name:<16} {median:>9.3f} {p90:>8.3f} {min(values):>8.3f} {median / base:>7.2f}")

    del sessions
    reference = torch_scores(Scorer(*pair).eval(), points, knn)
    fused_error = relative_error(outputs["fused"], reference)
    print(f"\nparity fused (onnxruntime) vs PyTorch Scorer: max relative error {fused_error:.2e}")
    print(
        f"parity straightforward vs PyTorch Scorer:     max relative error "
        f"{relative_error(outputs['straightforward'], reference):.2e}"
    )
    fp16_scores = run_session(onnx_session(fp16.SerializeToString(), threads=args.threads), points, knn)
    drift = relative_error(fp16_scores, outputs["fused"])
    mean_drift = float(np.mean(np.abs(fp16_scores - outputs["fused"]) / np.abs(outputs["fused"])))
    print(
        f"FP16 graph vs FP32 graph (onnxruntime CPU): max relative drift {drift:.2e}, mean {mean_drift:.2e}"
    )


if __name__ == "__main__":
    main()
