"""The numba kernels behind :mod:`pixlearn.classical.fast_filters`: Gaussian smoothing passes.

Importing this module needs numba (``ImportError`` otherwise); each kernel is compiled on its first
call or loaded from numba's on-disk cache; all release the GIL and work on a range of rows, so
that threads can share an array. A smoothing pass computes, for each output sample, SciPy's
``correlate1d`` sum of a symmetric kernel: ``w[r] * x[i] + sum_k w[r + k] * (x[i - k] + x[i + k])``
in float64, with half-sample reflection at the borders (repeated for axes shorter than the
kernel), and stores it as float32. :func:`along_middle` vectorises over the axes after the
filtered one, :func:`along_last` over the filtered (last) axis itself.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["along_last", "along_middle"]


@njit(nogil=True, cache=True, inline="always")
def reflect(i, n):
    """Index ``i`` of an axis of length ``n`` reflected about the half-sample borders."""
    m = i % (2 * n)
    return 2 * n - 1 - m if m >= n else m


@njit(nogil=True, cache=True)
def along_middle(src, dst, w, width, lo, hi):
    """Smooth ``src`` of shape (outer, n, inner) along its middle axis into ``dst``: tasks ``lo..hi-1``
    of the flattened (outer, n, column block) index, blocks of `width` columns of the inner axes.

    Column blocks keep the float64 sums in cache and give threads work on a short middle axis
    (the sections of a thin stack) too.
    """
    n = src.shape[1]
    inner = src.shape[2]
    blocks = (inner + width - 1) // width
    r = (w.shape[0] - 1) // 2
    acc = np.empty(width, np.float64)
    for t in range(lo, hi):
        a = t // (n * blocks)
        row = (t // blocks) % n
        b0 = (t % blocks) * width
        m = min(width, inner - b0)
        centre = w[r]
        s0 = src[a, row, b0:b0 + m]
        for b in range(m):
            acc[b] = centre * s0[b]
        for k in range(1, r + 1):
            s1 = src[a, reflect(row - k, n), b0:b0 + m]
            s2 = src[a, reflect(row + k, n), b0:b0 + m]
            wk = w[r + k]
            for b in range(m):
                acc[b] += wk * (np.float64(s1[b]) + np.float64(s2[b]))
        d = dst[a, row, b0:b0 + m]
        for b in range(m):
            d[b] = acc[b]


@njit(nogil=True, cache=True)
def along_last(src, dst, w, lo, hi):
    """Smooth the rows ``lo..hi-1`` of ``src`` of shape (rows, n) along their axis into ``dst``.

    Each row is copied into a buffer with its reflected borders; the taps then run over slices of
    it (plain ``base + i`` indexing, which the compiler vectorises, unlike offsets inside the loop).
    """
    n = src.shape[1]
    r = (w.shape[0] - 1) // 2
    buf = np.empty(n + 2 * r, np.float64)
    acc = np.empty(n, np.float64)
    for t in range(lo, hi):
        for i in range(n):
            buf[i + r] = src[t, i]
        for i in range(r):
            buf[i] = src[t, reflect(i - r, n)]
            buf[n + r + i] = src[t, reflect(n + i, n)]
        centre = w[r]
        for i in range(n):
            acc[i] = centre * buf[i + r]
        for k in range(1, r + 1):
            wk = w[r + k]
            before = buf[r - k : r - k + n]
            after = buf[r + k : r + k + n]
            for i in range(n):
                acc[i] += wk * (before[i] + after[i])
        for i in range(n):
            dst[t, i] = acc[i]
