"""The two neighbour averages of an LFA block, computed without materialising (n, k, c).

An LFA block averages the concatenation ``[geo(G_ij), f_j]`` over the k neighbours j of
each point i. The average of a concatenation is the concatenation of the averages, so the
two halves are computed separately:

* ``NeighbourMean``: the average of the neighbours' features is a sparse (n x n) matrix
  ``A`` (``A[i, j] = 1/k`` for each kNN entry, repeated entries add up) times the feature
  matrix. ``A`` and its transpose (for the backward pass) are built once per cloud and
  shared by all LFA blocks of a forward pass.
* ``pooled_geometric_features``: ``mean_j LeakyReLU(G_ij W^T + b)`` does need work per
  point pair because the LeakyReLU sits between the linear map and the average. It does
  not depend on the features at all, so the geometric halves of all LFA blocks of the
  network are computed in one pass with their weights stacked. The per-pair values are
  never stored: the forward pass keeps only the (n, C) averages and the backward pass
  recomputes each pair's pre-activation to know its LeakyReLU slope. On the CPU a
  Numba kernel does this (about 5x faster than the chunked torch version on 2 cores);
  elsewhere, or when gradients with respect to the coordinates are needed, a chunked
  torch version does the same.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch.nn import functional as F

from st3d_edge.model.blocks import LEAKY_SLOPE

# Elements of one (rows, k, C) chunk in the torch version: about 16 MB of float32, so a
# chunk is worked on while it is still in cache and memory stays bounded for any n.
_CHUNK_ELEMENTS = 1 << 22


class NeighbourMean:
    """``x -> A x`` with ``A`` the kNN averaging matrix of one cloud, differentiable in ``x``."""

    def __init__(self, knn: torch.Tensor, dtype: torch.dtype = torch.float32) -> None:
        if knn.dim() != 2:
            raise ValueError(f"knn must be (n, k), got shape {tuple(knn.shape)}")
        n, k = knn.shape
        knn = knn.to(torch.int64)
        if knn.numel() and (int(knn.min()) < 0 or int(knn.max()) >= n):
            raise ValueError(f"knn holds indices outside 0..{n - 1}")
        device = knn.device
        values = torch.full((n * k,), 1.0 / k, dtype=dtype, device=device)
        # int32 indices where they fit: MKL takes them as they are, int64 ones are converted
        # on every product.
        index_dtype = torch.int32 if n * k < 2**31 else torch.int64
        row_starts = torch.arange(0, n * k + 1, k, device=device, dtype=index_dtype)
        on_cpu = device.type == "cpu"
        # MKL (the CPU kernel) takes rows in any column order; other backends want them sorted.
        columns = knn.reshape(-1) if on_cpu else torch.sort(knn, dim=1).values.reshape(-1)
        self.matrix = _csr(row_starts, columns.to(index_dtype), values, n)
        # The transpose, built directly: a stable sort of the kNN entries by neighbour keeps
        # each of its rows' column indices ascending. numpy's stable sort is several times
        # faster than torch's on the CPU.
        flat = knn.reshape(-1)
        if on_cpu:
            order = torch.from_numpy(np.argsort(flat.numpy(), kind="stable"))
        else:
            order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=n)
        t_row_starts = torch.zeros(n + 1, dtype=index_dtype, device=device)
        t_row_starts[1:] = torch.cumsum(counts, 0)
        self.transpose = _csr(t_row_starts, (order // k).to(index_dtype), values, n)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SparseMean.apply(x, self.matrix, self.transpose)


def _csr(row_starts, columns, values, n):
    # Built from kNN indices that are in range by construction; torch's beta-state notice
    # about sparse CSR would only repeat on every forward pass.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(row_starts, columns, values, (n, n), check_invariants=False)


class _SparseMean(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, matrix, transpose):
        ctx.transpose = transpose
        return torch.sparse.mm(matrix, x)

    @staticmethod
    def backward(ctx, grad):
        return torch.sparse.mm(ctx.transpose, grad), None, None


def pooled_geometric_features(
    geometric: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, backend: str = "auto"
) -> torch.Tensor:
    """``mean_j LeakyReLU(0.2)(G[:, j] @ weight.T + bias)``: (n, k, g) -> (n, C).

    ``backend``: ``"numba"`` (float32 on the CPU, no gradient for ``geometric``), ``"torch"``
    (chunked, any device, every gradient) or ``"auto"`` (numba where it applies).
    """
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"unknown backend {backend!r}")
    if backend == "auto":
        backend = "numba" if _numba_applies(geometric) else "torch"
    if backend == "numba":
        if not _numba_applies(geometric):
            raise ValueError("the numba pooling needs float32 CPU tensors and no gradient for G")
        return _NumbaPool.apply(geometric, weight, bias)
    return _TorchPool.apply(geometric, weight, bias)


def _numba_applies(geometric: torch.Tensor) -> bool:
    if geometric.device.type != "cpu" or geometric.requires_grad:
        return False
    # float32 only: every other dtype would compile the kernels once more for little use.
    if geometric.dtype != torch.float32:
        return False

    from st3d_edge.numba_support import numba_available

    return numba_available()


def _chunk_rows(k: int, channels: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(1, k * channels))


class _TorchPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, geometric, weight, bias):
        ctx.save_for_backward(geometric, weight, bias)
        n, k, g = geometric.shape
        channels = weight.shape[0]
        out = geometric.new_empty(n, channels)
        rows = _chunk_rows(k, channels)
        for start in range(0, n, rows):
            z = torch.addmm(bias, geometric[start : start + rows].reshape(-1, g), weight.t())
            F.leaky_relu_(z, LEAKY_SLOPE)
            torch.mean(z.view(-1, k, channels), dim=1, out=out[start : start + rows])
        return out

    @staticmethod
    def backward(ctx, grad):
        geometric, weight, bias = ctx.saved_tensors
        n, k, g = geometric.shape
        channels = weight.shape[0]
        grad = grad / k
        grad_weight = torch.zeros_like(weight)
        grad_bias = torch.zeros_like(bias)
        grad_geometric = torch.empty_like(geometric) if ctx.needs_input_grad[0] else None
        rows = _chunk_rows(k, channels)
        for start in range(0, n, rows):
            pairs = geometric[start : start + rows].reshape(-1, g)
            z = torch.addmm(bias, pairs, weight.t()).view(-1, k, channels)
            g_rows = grad[start : start + rows, None, :]
            grad_z = torch.where(z > 0, g_rows, LEAKY_SLOPE * g_rows).view(-1, channels)
            grad_weight.addmm_(grad_z.t(), pairs)
            grad_bias.add_(grad_z.sum(0))
            if grad_geometric is not None:
                grad_geometric[start : start + rows] = (grad_z @ weight).view(-1, k, g)
        return grad_geometric, grad_weight, grad_bias


class _NumbaPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, geometric, weight, bias):
        from st3d_edge.model import _pool_kernels

        ctx.save_for_backward(geometric, weight, bias)
        g_np, wt_np, b_np = _pool_kernels.as_arrays(geometric, weight, bias)
        out = _pool_kernels.pool_forward(g_np, wt_np, b_np, LEAKY_SLOPE)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad):
        from st3d_edge.model import _pool_kernels

        geometric, weight, bias = ctx.saved_tensors
        g_np, wt_np, b_np = _pool_kernels.as_arrays(geometric, weight, bias)
        grad_np = grad.detach().contiguous().numpy()
        grad_wt, grad_b = _pool_kernels.pool_backward(g_np, wt_np, b_np, LEAKY_SLOPE, grad_np)
        grad_weight = torch.from_numpy(grad_wt.T.copy()).to(weight.dtype)
        grad_bias = torch.from_numpy(grad_b).to(bias.dtype)
        return None, grad_weight, grad_bias
