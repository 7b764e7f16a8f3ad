"""Numba CPU kernels for :func:`st3d_edge.model.pooling.pooled_geometric_features`.

Each point's row is computed by one thread in a fixed order, so a point's result depends
only on its own pairs (the receptive-field tests rely on that). The backward pass sums
over all pairs of the cloud: each point's pairs in float32, the points in float64, so that
the weight gradient agrees with the torch reference to float32 rounding.
"""

from __future__ import annotations

import functools

import numpy as np

_BACKWARD_CHUNKS = 64


@functools.cache
def _kernels():
    import numba

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def forward(geometric, weight_t, bias, slope, out):
        n, k, g = geometric.shape
        channels = weight_t.shape[1]
        for i in numba.prange(n):
            acc = np.zeros_like(bias)
            z = np.empty_like(bias)
            for j in range(k):
                z[:] = bias
                for q in range(g):
                    value = geometric[i, j, q]
                    for c in range(channels):
                        z[c] += value * weight_t[q, c]
                for c in range(channels):
                    acc[c] += max(z[c], slope * z[c])
            for c in range(channels):
                out[i, c] = acc[c] / k

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def backward(geometric, weight_t, bias, slope, grad, chunks):
        n, k, g = geometric.shape
        channels = weight_t.shape[1]
        partial = np.zeros((chunks, g + 1, channels))
        step = (n + chunks - 1) // chunks
        for t in numba.prange(chunks):
            z = np.empty_like(bias)
            grad_z = np.empty_like(bias)
            # One point's k pairs are summed in the working precision, the points in float64.
            row = np.empty((g + 1, channels), dtype=bias.dtype)
            total = np.zeros((g + 1, channels))
            for i in range(t * step, min(n, (t + 1) * step)):
                row[:] = 0
                for j in range(k):
                    z[:] = bias
                    for q in range(g):
                        value = geometric[i, j, q]
                        for c in range(channels):
                            z[c] += value * weight_t[q, c]
                    for c in range(channels):
                        grad_z[c] = grad[i, c] if z[c] > 0 else slope * grad[i, c]
                    for q in range(g):
                        value = geometric[i, j, q]
                        for c in range(channels):
                            row[q, c] += grad_z[c] * value
                    for c in range(channels):
                        row[g, c] += grad_z[c]
                for q in range(g + 1):
                    for c in range(channels):
                        total[q, c] += row[q, c]
            partial[t] = total
        return partial.sum(axis=0)

    return forward, backward


def _use_torch_threads() -> None:
    import numba
    import torch

    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def as_arrays(geometric, weight, bias):
    """Contiguous numpy views: G (n, k, g), W transposed (g, C), b (C,), one dtype."""
    dtype = geometric.dtype
    g_np = geometric.detach().contiguous().numpy()
    wt_np = weight.detach().to(dtype).t().contiguous().numpy()
    b_np = bias.detach().to(dtype).contiguous().numpy()
    return g_np, wt_np, b_np


def pool_forward(geometric, weight_t, bias, slope):
    forward, _ = _kernels()
    _use_torch_threads()
    out = np.empty((geometric.shape[0], weight_t.shape[1]), dtype=geometric.dtype)
    forward(geometric, weight_t, bias, geometric.dtype.type(slope), out)
    return out


def pool_backward(geometric, weight_t, bias, slope, grad):
    """Gradients of ``sum(grad * pool_forward(...))``: (weight_t (g, C), bias (C,)), float64."""
    _, backward = _kernels()
    _use_torch_threads()
    k = geometric.shape[1]
    scaled = (grad / k).astype(geometric.dtype)
    chunks = min(_BACKWARD_CHUNKS, max(1, geometric.shape[0]))
    total = backward(geometric, weight_t, bias, geometric.dtype.type(slope), scaled, chunks)
    g = geometric.shape[2]
    return total[:g], total[g]
