"""Dense layers of two networks side by side, multiplied one network at a time.

The exported scorer runs teacher and student as one graph: each dense matrix holds both
networks' weights in blocks, with exact zeros between them (rows of one network's input
channels never reach the other's outputs). Multiplying the whole matrix spends half of the
products on those zeros. Here a matrix is split once, when the graph is read, into its
independent parts: the connected components of its non-zero pattern (an input row and an
output column are linked when their entry is non-zero). Each part is one dense product over
its own rows and columns; the rows of a part need not be contiguous (an LFA's output
interleaves the networks: [own T | own S | neighbours T | neighbours S]).

The split drops structurally zero entries only, so the result is the whole product's, up to
the order of the float additions. A matrix without zeros is one part, the plain product.
``tests/test_block_dense.py`` compares both.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

ROWS = 1024  # points per single-threaded BLAS call


@dataclass(frozen=True)
class BlockDense:
    """A matrix (c_in, c_out) as independent parts, flattened for one numba kernel: part i
    multiplies the input columns ``rows[row_start[i]:row_start[i+1]]`` by
    ``weights[weight_start[i]:weight_start[i+1]]`` (row-major, len(rows_i) x len(cols_i)) into
    the output columns ``cols[col_start[i]:col_start[i+1]]``."""

    c_in: int
    c_out: int
    rows: np.ndarray  # int32
    row_start: np.ndarray  # int64 (parts + 1,)
    cols: np.ndarray  # int32
    col_start: np.ndarray  # int64 (parts + 1,)
    weights: np.ndarray  # float32, every part's matrix, flattened
    weight_start: np.ndarray  # int64 (parts + 1,)

    @property
    def parts(self) -> int:
        return len(self.row_start) - 1


def split(weight: np.ndarray) -> BlockDense:
    """The independent parts of ``weight`` (c_in, c_out), see the module docstring."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    weight = np.asarray(weight, dtype=np.float32)
    c_in, c_out = weight.shape
    r, c = np.nonzero(weight)
    # bipartite graph on c_in + c_out nodes: rows first, then columns
    graph = coo_matrix((np.ones(len(r)), (r, c_in + c)), shape=(c_in + c_out,) * 2)
    _, label = connected_components(graph, directed=False)
    row_label, col_label = label[:c_in], label[c_in:]
    rows, cols, mats = [], [], []
    for part in np.unique(col_label):
        part_cols = np.flatnonzero(col_label == part)
        part_rows = np.flatnonzero(row_label == part)
        cols.append(part_cols)
        rows.append(part_rows)
        mats.append(weight[np.ix_(part_rows, part_cols)].ravel())
    # an output column without any non-zero entry is its own part with no rows (bias only)

    def starts(chunks):
        return np.cumsum([0, *(len(x) for x in chunks)]).astype(np.int64)

    return BlockDense(
        c_in=c_in,
        c_out=c_out,
        rows=np.concatenate(rows).astype(np.int32),
        row_start=starts(rows),
        cols=np.concatenate(cols).astype(np.int32),
        col_start=starts(cols),
        weights=np.concatenate(mats).astype(np.float32),
        weight_start=starts(mats),
    )


@functools.cache
def _kernel():
    import numba

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def block_dense(x, rows, row_start, cols, col_start, weights, weight_start, bias, slope, skip, out):
        # out = leaky(x @ W + bias) (+ skip when it has out's shape), W given by its parts; each
        # thread's block of points is one single-threaded BLAS product per part, so numpy's own
        # BLAS thread pool never runs (its spinning threads slowed these kernels 1.5-2x)
        n = out.shape[0]
        add_skip = skip.shape[0] == n
        blocks = (n + ROWS - 1) // ROWS
        for t in numba.prange(blocks):
            lo, hi = t * ROWS, min(n, (t + 1) * ROWS)
            for part in range(len(row_start) - 1):
                part_rows = rows[row_start[part] : row_start[part + 1]]
                part_cols = cols[col_start[part] : col_start[part + 1]]
                nr, nc = len(part_rows), len(part_cols)
                if nr > 0:
                    xb = np.empty((hi - lo, nr), dtype=np.float32)
                    for p in range(hi - lo):
                        for i in range(nr):
                            xb[p, i] = x[lo + p, part_rows[i]]
                    w = weights[weight_start[part] : weight_start[part + 1]].reshape(nr, nc)
                    y = np.dot(xb, w)
                else:
                    y = np.zeros((hi - lo, nc), dtype=np.float32)
                for p in range(hi - lo):
                    for j in range(nc):
                        c = part_cols[j]
                        v = y[p, j] + bias[c]
                        v = max(v, slope * v)
                        if add_skip:
                            v += skip[lo + p, c]
                        out[lo + p, c] = v

    return block_dense


def apply(
    x: np.ndarray, layer: BlockDense, bias: np.ndarray, slope: float, skip: np.ndarray | None = None
) -> np.ndarray:
    """leaky(x @ W + bias) (+ skip) for the matrix W that ``layer`` was split from; slope 1
    leaves the product linear."""
    out = np.empty((len(x), layer.c_out), dtype=np.float32)
    # skip may be a broadcast view (a constant row): numba reads it through its strides
    skip = np.zeros((0, 0), dtype=np.float32) if skip is None else skip
    _kernel()(
        np.ascontiguousarray(x, dtype=np.float32),
        layer.rows,
        layer.row_start,
        layer.cols,
        layer.col_start,
        layer.weights,
        layer.weight_start,
        np.asarray(bias, dtype=np.float32).reshape(-1),
        np.float32(slope),
        skip,
        out,
    )
    return out
