"""Farthest point sampling on the GPU: the whole sampling loop inside one kernel launch.

One thread block samples one *segment* of a point buffer: the whole cloud for exact FPS, one
spatial tile for tiled FPS, so both samplers are the same kernel and all tiles run in one
launch. Per iteration every thread updates the running min-distance of its strided share of
the segment (kept in global memory, one float per point) and proposes its farthest point; a
block-wide argmax in shared memory picks the next sample. No launch, no host round trip per
sample.

Decisions the paper and the references leave open:

- Tie rule: among points at the same (largest) min-distance the lowest position wins, as with
  ``numpy.argmax``; each thread scans its points in increasing order with a strict ``>`` and
  the reduction keeps the lower position on equal distances.
- Distances are squared float32 values, rounded as numpy rounds them (see ``device_math``),
  so on distinct points the samples are identical to the numpy exact FPS.
- The points are read from a structure-of-arrays copy ``soa[3, N]`` (coalesced loads); the
  caller builds it with :func:`gather_soa_kernel`, in tile order for tiled FPS.
- Block size is a launch parameter and must be a power of two (the tree reduction halves it).
"""

from __future__ import annotations

import functools

from st3d_edge.runtime.cuda.device_math import INF32, MAX_THREADS, device_functions, import_numba

# numba's names, bound by ``import_numba(globals())`` on first use (see ``device_math``).
cuda = float32 = int32 = None


@functools.cache
def fps_segments_kernel():
    """``kernel[segments, threads, stream](soa, segs[5, S], resume, min_dist, out)``.

    Segment ``s`` covers positions ``start .. start + count`` of ``soa`` (``segs`` rows: start,
    count, quota, out_at, first) and writes ``quota`` positions to ``out[out_at:]``.

    ``resume == 0``: a fresh FPS whose first sample is position ``start + first``.
    ``resume == 1``: carry on from the squared distances already in ``min_dist`` (chosen
    points hold -1): every sample is the current argmax. This is the tiled sampler's global
    second pass, which starts from each point's distance to the samples of its own tile.

    A chosen point's min-distance is set to -1, so it is never chosen again; once duplicates
    make every remaining distance zero, the unchosen points follow in position order (the
    rule of ``st3d_edge.geometry.fps``). ``quota <= count - already chosen`` is the caller's duty.
    """
    import_numba(globals())
    sqdist = device_functions().sqdist

    @cuda.jit
    def fps_segments(soa, segs, resume, min_dist, out):
        seg = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        threads = cuda.blockDim.x
        best_d = cuda.shared.array(MAX_THREADS, float32)
        best_i = cuda.shared.array(MAX_THREADS, int32)
        start = segs[0, seg]
        count = segs[1, seg]
        quota = segs[2, seg]
        out_at = segs[3, seg]
        if quota <= 0:
            return  # the whole block leaves together: no barrier is skipped by some threads only
        last = int32(-1)
        done = 0
        if resume == 0:
            last = start + segs[4, seg]
            for j in range(tid, count, threads):
                min_dist[start + j] = float32(-1.0) if start + j == last else INF32
            if tid == 0:
                out[out_at] = last
            done = 1
        for s in range(done, quota):
            lx = float32(0.0)
            ly = float32(0.0)
            lz = float32(0.0)
            if last >= 0:
                lx = soa[0, last]
                ly = soa[1, last]
                lz = soa[2, last]
            my_d = float32(-1.0)
            my_i = int32(-1)
            for j in range(tid, count, threads):
                p = start + j
                m = min_dist[p]
                if last >= 0:
                    d = sqdist(soa[0, p], soa[1, p], soa[2, p], lx, ly, lz)
                    if d < m:
                        m = d
                        min_dist[p] = d
                if m > my_d:
                    my_d = m
                    my_i = p
            best_d[tid] = my_d
            best_i[tid] = my_i
            cuda.syncthreads()
            stride = threads // 2
            while stride > 0:
                if tid < stride:
                    od = best_d[tid + stride]
                    oi = best_i[tid + stride]
                    bd = best_d[tid]
                    if od > bd or (od == bd and oi < best_i[tid]):
                        best_d[tid] = od
                        best_i[tid] = oi
                cuda.syncthreads()
                stride //= 2
            last = best_i[0]
            if tid == 0:
                out[out_at + s] = last
                min_dist[last] = float32(-1.0)
            cuda.syncthreads()  # everyone has read best_i[0] before the next round overwrites it
        # Leave min_dist as the distance to *all* samples (the last one included): the tiled
        # sampler's second pass resumes from it.
        lx = soa[0, last]
        ly = soa[1, last]
        lz = soa[2, last]
        for j in range(tid, count, threads):
            p = start + j
            d = sqdist(soa[0, p], soa[1, p], soa[2, p], lx, ly, lz)
            if d < min_dist[p]:
                min_dist[p] = d

    return fps_segments


@functools.cache
def gather_soa_kernel():
    """``kernel[blocks, threads, stream](points[N, 3], order, soa[3, N])``.

    ``soa[c, j] = points[order[j], c]``; an empty ``order`` means the identity.
    """
    import_numba(globals())

    @cuda.jit
    def gather_soa(points, order, soa):
        j = cuda.grid(1)
        if j < points.shape[0]:
            p = order[j] if order.shape[0] > 0 else j
            soa[0, j] = points[p, 0]
            soa[1, j] = points[p, 1]
            soa[2, j] = points[p, 2]

    return gather_soa


@functools.cache
def scatter_kernel():
    """``kernel[blocks, threads, stream](order, values, out)``: ``out[order[j]] = values[j]``."""
    import_numba(globals())

    @cuda.jit
    def scatter(order, values, out):
        j = cuda.grid(1)
        if j < order.shape[0]:
            out[order[j]] = values[j]

    return scatter


@functools.cache
def map_positions_kernel():
    """``kernel[blocks, threads, stream](order, positions, mapped, out)``.

    ``out[i] = order[positions[i]]`` for ``i < mapped`` (positions in a tile-ordered buffer),
    ``positions[i]`` after that (positions in the scan's own order).
    """
    import_numba(globals())

    @cuda.jit
    def map_positions(order, positions, mapped, out):
        i = cuda.grid(1)
        if i < positions.shape[0]:
            out[i] = order[positions[i]] if i < mapped else positions[i]

    return map_positions


def check_block_size(threads: int) -> int:
    if threads < 1 or threads > MAX_THREADS or threads & (threads - 1):
        raise ValueError(f"FPS block size must be a power of two in 1..{MAX_THREADS}, got {threads}")
    return int(threads)
