"""The scorer as one torch module written for export: teacher and student side by side.

``FusedScorer(points_raw[n,3], knn[n,k] int32) -> scores[n]`` computes eq. (6) of the paper,
A(p) = ||f_S - (f_T - mu) / sigma||_2, with the division by s inside. It is the same function as
``st3d_edge.model.scorer.Scorer``, rearranged for inference engines. Every rearrangement is an
identity of real arithmetic; float32 results differ from the training module only by rounding
order. On the CPU the graph is bound by memory traffic over the (n, k, c) tensors, so the
rearrangements aim at writing and reading each of those once:

- Teacher and student run as one network on (n, c_T + c_S) features: one Gather fetches
  both networks' neighbours (rows of contiguous channels), one MatMul with a block-diagonal
  weight serves both dense layers (the zeros cost little: the dense layers are a small part).
- G = (p - p_j, ||p - p_j||) is computed once, and the geometric MLPs of both LFAs of a block,
  teacher and student, are one Gemm (+ LeakyReLU, which onnxruntime fuses into it).
- The LFA mean of a concatenation is the concatenation of the means, so the concatenated
  (n, k, 2c) tensor of the paper's formulation is never built.
- Means over the k neighbours are sums: 1/k is folded into the weights before the LeakyReLU
  (leaky(x / k) = leaky(x) / k) or into the rows of the next dense layer (linearity); both are
  exact in floating point when k is a power of two (k = 32).
- A block's pre-MLP (d -> d/4) and skip-MLP (d -> d) read the same input: one MatMul.
- Everything that does not depend on the input is precomputed here, in float64: the first
  block sees f = 0, so its pre- and skip-MLPs are constants, its first LFA's neighbour mean
  is that constant, and the post-MLP's rows acting on it fold into its bias.
- The pair tensors are built :data:`CHANNEL_GROUP` channels at a time (constant slices of the
  weights and of the features, so every shape stays static): an engine then holds one
  (group, n * k) tensor at a time instead of all channels, which cut onnxruntime's peak memory
  at n = 64000, k = 32 from 4.1 GiB to 1.4 GiB for the whole runtime process, at about the
  same speed (benchmarks/runtime.py).

Channel layout of the flat features: within every tensor the teacher's channels come first.
Nothing here depends on n, so the exported graph has a dynamic point axis.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from st3d_edge.export.weights import LEAKY_SLOPE, NetWeights

CHANNEL_GROUP = 16  # channels per pair tensor, see the module docstring


def _leaky_np(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, LEAKY_SLOPE * x)


def _two_net(rows: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Weight for flat [T | S] inputs and outputs from per-network row blocks.

    ``rows`` lists input segments in the order the flat input holds them: (teacher rows,
    student rows) of the per-network weights; teacher rows feed the teacher's output columns.
    """
    out_t, out_s = rows[0][0].shape[1], rows[0][1].shape[1]
    blocks = []
    for rows_t, rows_s in rows:
        blocks.append(np.hstack([rows_t, np.zeros((rows_t.shape[0], out_s))]))
        blocks.append(np.hstack([np.zeros((rows_s.shape[0], out_t)), rows_s]))
    return np.vstack(blocks)


class FusedScorer(nn.Module):
    """Teacher + student + normalisation + distance in one module (see the module docstring).

    ``dtype=torch.float16`` gives the FP16 variant: weights and activations in FP16; the
    division by s, G (differences of nearby points need FP32: coordinates / s reach the
    hundreds, where FP16's spacing is 0.06), the normalisation, the distance and the output
    stay FP32, with explicit casts at the two boundaries.

    ``feature_outputs=True`` also returns the student features and the normalised teacher
    features, (n, d) each, for debugging.
    """

    def __init__(
        self,
        teacher: NetWeights,
        student: NetWeights,
        s: float,
        mu: np.ndarray,
        sigma: np.ndarray,
        k: int,
        feature_outputs: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if len(teacher.blocks) != len(student.blocks) or teacher.d != student.d:
            raise ValueError("teacher and student must have the same number of blocks and d")
        if len(teacher.blocks) < 1:
            raise ValueError("the network needs at least one residual block")
        if teacher.geometric_channels != student.geometric_channels:
            raise ValueError("teacher and student must use the same geometric features")
        self.k = int(k)  # fixed per bundle, so reshapes use constants rather than Shape ops
        self.d = teacher.d
        self.dtype = dtype
        self.feature_outputs = feature_outputs
        self.absolute_coords = teacher.geometric_channels == 7
        self.register_buffer("s", torch.tensor(float(s), dtype=torch.float32))
        self.register_buffer("mu", torch.from_numpy(np.asarray(mu, np.float32).reshape(-1)))
        self.register_buffer("sigma", torch.from_numpy(np.asarray(sigma, np.float32).reshape(-1)))
        inv_k = 1.0 / self.k
        pairs = list(zip(teacher.blocks, student.blocks, strict=True))
        self.geo1_width = [b_t.geo1.out_dim + b_s.geo1.out_dim for b_t, b_s in pairs]
        self.h_width = [b_t.pre.out_dim + b_s.pre.out_dim for b_t, b_s in pairs]
        self.geo_width = [
            b_t.geo1.out_dim + b_s.geo1.out_dim + b_t.geo2.out_dim + b_s.geo2.out_dim for b_t, b_s in pairs
        ]
        # one (geo_w.j, geo_b.j) per channel group, blocks in order: named parameters, so the
        # graph's initializers keep these names (a slice taken in forward would be folded into
        # an anonymous constant) and st3d_edge.runtime.cpu_scorer can read them back
        self.geo_w, self.geo_b = nn.ParameterList(), nn.ParameterList()
        self.geo_groups: list[list[int]] = []  # per block: its entries of geo_w / geo_b
        self.geo_rows: list[int] = []  # channels of each entry
        for b_t, b_s in pairs:
            # columns [T geo1 | S geo1 | T geo2 | S geo2], times 1/k: a neighbour sum is the mean
            parts = [b_t.geo1, b_s.geo1, b_t.geo2, b_s.geo2]
            # stored transposed, (out, in) and (out, 1): the Gemm runs channels-first
            weight = (np.hstack([p.weight for p in parts]) * inv_k).T
            bias = np.concatenate([p.bias for p in parts])[:, None] * inv_k
            group = []
            for lo in range(0, weight.shape[0], CHANNEL_GROUP):
                group.append(len(self.geo_w))
                self.geo_w.append(_param(weight[lo : lo + CHANNEL_GROUP]))
                self.geo_b.append(_param(bias[lo : lo + CHANNEL_GROUP]))
                self.geo_rows.append(len(weight[lo : lo + CHANNEL_GROUP]))
            self.geo_groups.append(group)
        self._first_block(pairs[0], inv_k)
        self.pre_skip_w, self.pre_skip_b = nn.ParameterList(), nn.ParameterList()
        self.post_w, self.post_b = nn.ParameterList(), nn.ParameterList()
        for b_t, b_s in pairs[1:]:
            # output columns [T h | S h | T skip | S skip]; h only feeds the first LFA's
            # neighbour sum, so it is produced as h / k
            pre = _two_net([(b_t.pre.weight * inv_k, b_s.pre.weight * inv_k)])
            skip = _two_net([(b_t.skip.weight, b_s.skip.weight)])
            self.pre_skip_w.append(_param(np.hstack([pre, skip])))
            self.pre_skip_b.append(
                _param(
                    np.concatenate([b_t.pre.bias * inv_k, b_s.pre.bias * inv_k, b_t.skip.bias, b_s.skip.bias])
                )
            )
            # input rows [geo2 T|S, neighbour sum of the first LFA's output: geo1 T|S, h T|S]
            self.post_w.append(_param(_two_net(_post_rows(b_t, b_s, inv_k))))
            self.post_b.append(_param(np.concatenate([b_t.post.bias, b_s.post.bias])))
        self.head1_w = _param(_two_net([(teacher.head1.weight, student.head1.weight)]))
        self.head1_b = _param(np.concatenate([teacher.head1.bias, student.head1.bias]))
        self.head2_w = _param(_two_net([(teacher.head2.weight, student.head2.weight)]))
        self.head2_b = _param(np.concatenate([teacher.head2.bias, student.head2.bias]))
        for param in self.parameters():  # weights in the compute precision; s, mu, sigma stay fp32
            param.data = param.data.to(dtype)

    def _first_block(self, pair, inv_k: float) -> None:
        """Fold everything the first block computes from f = 0 into constants (float64)."""
        rows, bias, skip = [], [], []
        for block in pair:
            c1, c2 = block.geo1.out_dim, block.geo2.out_dim
            h = _leaky_np(block.pre.bias.astype(np.float64))  # pre-MLP of f = 0
            w = block.post.weight.astype(np.float64)  # rows: [geo2 | mean of geo1 | h]
            if w.shape[0] != c2 + c1 + h.size:
                raise ValueError("post-MLP input width does not match the LFA output widths")
            rows.append((w[:c2], w[c2 : c2 + c1] * inv_k))  # geo1 arrives as a neighbour sum
            bias.append(block.post.bias.astype(np.float64) + h @ w[c2 + c1 :])
            skip.append(_leaky_np(block.skip.bias.astype(np.float64)))
        (geo2_t, geo1_t), (geo2_s, geo1_s) = rows
        self.first_post_w = _param(_two_net([(geo2_t, geo2_s), (geo1_t, geo1_s)]))
        self.first_post_b = _param(np.concatenate(bias))
        self.first_skip = _param(np.concatenate(skip))

    def geometry(self, points: torch.Tensor, knn: torch.Tensor) -> torch.Tensor:
        """G channels-first, (4, n * k) with columns point-major; 7 rows with the absolute p."""
        x = points / self.s
        xt = x.t()  # (3, n): the neighbours' coordinates are gathered channels-first
        centre = xt.unsqueeze(2)  # (3, n, 1)
        diff = centre - xt[:, knn]  # (3, n, k): p - p_j
        dist = torch.sqrt((diff * diff).sum(dim=0, keepdim=True))
        parts = [diff, dist]
        if self.absolute_coords:  # the paper's ablation, not translation invariant
            parts.append(centre.expand_as(diff))
        g = torch.cat(parts, dim=0).reshape(7 if self.absolute_coords else 4, -1)
        return g if self.dtype == torch.float32 else g.to(self.dtype)

    def geometric_locations(self, g: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Block ``index``'s two geometric MLP means, (n, geo1 T|S) and (n, geo2 T|S).

        Channels-first: the Gemm writes (c, n * k), so the sum over the k neighbours runs over
        the innermost contiguous axis; only the (c, n) sums are transposed back.
        """
        sums = []
        for j in self.geo_groups[index]:
            a = _leaky(torch.addmm(self.geo_b[j], self.geo_w[j], g))
            sums.append(a.reshape(self.geo_rows[j], -1, self.k).sum(dim=2))
        m = torch.cat(sums, dim=0)
        width = self.geo1_width[index]
        return m[:width].t(), m[width:].t()

    def forward(self, points: torch.Tensor, knn: torch.Tensor):
        g = self.geometry(points, knn)
        geo1, geo2 = self.geometric_locations(g, 0)
        lfa2 = torch.cat([geo2, _neighbour_sum(geo1, knn)], dim=1)
        f = _leaky(torch.matmul(lfa2, self.first_post_w) + self.first_post_b) + self.first_skip
        for i in range(1, len(self.geo_groups)):
            geo1, geo2 = self.geometric_locations(g, i)
            pre_skip = _leaky(torch.matmul(f, self.pre_skip_w[i - 1]) + self.pre_skip_b[i - 1])
            h_over_k, skip = pre_skip[:, : self.h_width[i]], pre_skip[:, self.h_width[i] :]
            lfa1 = torch.cat([geo1, _neighbour_sum(h_over_k, knn)], dim=1)
            lfa2 = torch.cat([geo2, _neighbour_sum(lfa1, knn)], dim=1)
            f = _leaky(torch.matmul(lfa2, self.post_w[i - 1]) + self.post_b[i - 1]) + skip
        f = _leaky(torch.matmul(f, self.head1_w) + self.head1_b)
        f = torch.matmul(f, self.head2_w) + self.head2_b
        if self.dtype != torch.float32:
            f = f.float()
        return self.distance(f[:, : self.d], f[:, self.d :])

    def distance(self, teacher: torch.Tensor, student: torch.Tensor):
        normalized = (teacher - self.mu) / self.sigma
        diff = student - normalized
        scores = torch.sqrt((diff * diff).sum(dim=-1))
        if self.feature_outputs:
            return scores, student, normalized
        return scores


def _post_rows(b_t, b_s, inv_k: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Post-MLP rows in the flat input order [geo2 | geo1 | h], neighbour sums scaled by 1/k."""
    segments = []
    for lo_hi in ("geo2", "geo1", "h"):
        pair = []
        for b in (b_t, b_s):
            c1, c2 = b.geo1.out_dim, b.geo2.out_dim
            w = b.post.weight.astype(np.float64)  # per-network rows: [geo2 | geo1 mean | h mean]
            span = {"geo2": (0, c2, 1.0), "geo1": (c2, c2 + c1, inv_k), "h": (c2 + c1, None, inv_k)}
            start, stop, factor = span[lo_hi]
            pair.append(w[start:stop] * factor)
        segments.append(tuple(pair))
    return segments


def _neighbour_sum(features: torch.Tensor, knn: torch.Tensor) -> torch.Tensor:
    """sum_j f[knn[:, j]] for (n, c) features: a Gather + a ReduceSum per channel group."""
    width = features.shape[1]
    groups = [features[:, lo : lo + CHANNEL_GROUP] for lo in range(0, width, CHANNEL_GROUP)]
    return torch.cat([group[knn].sum(dim=1) for group in groups], dim=1)


def _leaky(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.leaky_relu(x, LEAKY_SLOPE)


def _param(array: np.ndarray) -> nn.Parameter:
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return nn.Parameter(tensor, requires_grad=False)
