"""The numba kernels behind the derivative features of :mod:`pixlearn.classical.filters`: one pass.

Importing this module needs numba (``ImportError`` otherwise); each kernel is compiled on its first
call or loaded from numba's on-disk cache, releases the GIL and works on a range of rows (the
flattened leading axes of its output), so that threads can share the arrays.

Every kernel reads the smoothed image ``g`` of one scale, padded by one pixel (half-sample
reflection), at the region whose first pixel is ``origin`` (unpadded coordinates), and takes the
same central finite differences as the NumPy code of :mod:`pixlearn.classical.filters`, in the same
float32 operations and order, so that gradient magnitudes, gradient products and Laplacians are
bit-identical to it. The Hessian eigenvalues come from the closed forms of
:mod:`pixlearn.classical.eigen_kernels` (float64), computed from the entries while they are in
registers: no array of second derivatives is ever written. The scale factors (``0.5 / s``,
``1 / s**2``, ``0.25 / (s_a * s_b)`` for spacings ``s``) are float32, as the NumPy code uses them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from pixlearn.classical.eigen_kernels import sym2_values, sym3_values

__all__ = [
    "gradient_magnitude2", "gradient_magnitude3", "gradient_products2", "gradient_products3",
    "hessian2", "hessian3",
]


@njit(nogil=True, cache=True, inline="always")
def rows3(g, z, y, x0, n):
    """The padded rows around ``(z, y)`` from column ``x0 - 1`` on, ``n + 2`` long: centre, z+1, z-1,
    y+1, y-1, (z+1, y+1), (z+1, y-1), (z-1, y+1), (z-1, y-1). Inner loops index these 1D views (so that
    LLVM vectorises them); pixel ``i`` of the output is element ``i + 1``."""
    lo, hi = x0 - 1, x0 + n + 1
    return (g[z, y, lo:hi], g[z + 1, y, lo:hi], g[z - 1, y, lo:hi], g[z, y + 1, lo:hi], g[z, y - 1, lo:hi],
            g[z + 1, y + 1, lo:hi], g[z + 1, y - 1, lo:hi], g[z - 1, y + 1, lo:hi], g[z - 1, y - 1, lo:hi])


@njit(nogil=True, cache=True)
def gradient_magnitude3(g, origin, s, mag, lo, hi):
    """``sqrt(dz**2 + dy**2 + dx**2)`` of the rows ``lo..hi-1`` of `mag` (shape ``(P, M, N)``)."""
    ny, nx = mag.shape[1], mag.shape[2]
    s0, s1, s2 = s[0], s[1], s[2]
    for r in range(lo, hi):
        k, j = r // ny, r % ny
        c, zp, zm, yp, ym = rows3(g, k + origin[0] + 1, j + origin[1] + 1, origin[2] + 1, nx)[:5]
        out = mag[k, j]
        for i in range(nx):
            d0 = (zp[i + 1] - zm[i + 1]) * s0
            d1 = (yp[i + 1] - ym[i + 1]) * s1
            d2 = (c[i + 2] - c[i]) * s2
            out[i] = np.sqrt(d0 * d0 + d1 * d1 + d2 * d2)


@njit(nogil=True, cache=True)
def gradient_magnitude2(g, origin, s, mag, lo, hi):
    """``sqrt(dy**2 + dx**2)`` of the rows ``lo..hi-1`` of `mag` (shape ``(M, N)``)."""
    nx = mag.shape[1]
    s0, s1 = s[0], s[1]
    for r in range(lo, hi):
        y, x0 = r + origin[0] + 1, origin[1]
        c, yp, ym = g[y, x0:x0 + nx + 2], g[y + 1, x0:x0 + nx + 2], g[y - 1, x0:x0 + nx + 2]
        out = mag[r]
        for i in range(nx):
            d0 = (yp[i + 1] - ym[i + 1]) * s0
            d1 = (c[i + 2] - c[i]) * s1
            out[i] = np.sqrt(d0 * d0 + d1 * d1)


@njit(nogil=True, cache=True)
def gradient_products3(g, origin, s, p00, p01, p02, p11, p12, p22, lo, hi):
    """Products of gradient components (the structure tensor before smoothing), rows ``lo..hi-1``."""
    ny, nx = p00.shape[1], p00.shape[2]
    s0, s1, s2 = s[0], s[1], s[2]
    for r in range(lo, hi):
        k, j = r // ny, r % ny
        c, zp, zm, yp, ym = rows3(g, k + origin[0] + 1, j + origin[1] + 1, origin[2] + 1, nx)[:5]
        q00, q01, q02, q11, q12, q22 = p00[k, j], p01[k, j], p02[k, j], p11[k, j], p12[k, j], p22[k, j]
        for i in range(nx):
            d0 = (zp[i + 1] - zm[i + 1]) * s0
            d1 = (yp[i + 1] - ym[i + 1]) * s1
            d2 = (c[i + 2] - c[i]) * s2
            q00[i] = d0 * d0
            q01[i] = d0 * d1
            q02[i] = d0 * d2
            q11[i] = d1 * d1
            q12[i] = d1 * d2
            q22[i] = d2 * d2


@njit(nogil=True, cache=True)
def gradient_products2(g, origin, s, p00, p01, p11, lo, hi):
    """Products of gradient components (the structure tensor before smoothing), rows ``lo..hi-1``."""
    nx = p00.shape[1]
    s0, s1 = s[0], s[1]
    for r in range(lo, hi):
        y, x0 = r + origin[0] + 1, origin[1]
        c, yp, ym = g[y, x0:x0 + nx + 2], g[y + 1, x0:x0 + nx + 2], g[y - 1, x0:x0 + nx + 2]
        q00, q01, q11 = p00[r], p01[r], p11[r]
        for i in range(nx):
            d0 = (yp[i + 1] - ym[i + 1]) * s0
            d1 = (c[i + 2] - c[i]) * s1
            q00[i] = d0 * d0
            q01[i] = d0 * d1
            q11[i] = d1 * d1


@njit(nogil=True, cache=True, fastmath={"arcp", "nsz"})
def hessian3(g, origin, s, lap, l0, l1, l2, with_eigen, lo, hi):
    """Laplacian and (with `with_eigen`) Hessian eigenvalues, largest first, of rows ``lo..hi-1``.

    `s` holds the six float32 factors ``1/s0**2, 1/s1**2, 1/s2**2, 0.25/(s0 s1), 0.25/(s0 s2),
    0.25/(s1 s2)``; without `with_eigen` the eigenvalue arrays are not touched.
    """
    ny, nx = lap.shape[1], lap.shape[2]
    s0, s1, s2, s3, s4, s5 = s[0], s[1], s[2], s[3], s[4], s[5]
    for r in range(lo, hi):
        k, j = r // ny, r % ny
        c, zp, zm, yp, ym, pp, pm, mp, mm = rows3(g, k + origin[0] + 1, j + origin[1] + 1, origin[2] + 1, nx)
        out = lap[k, j]
        if not with_eigen:
            for i in range(nx):
                x = i + 1
                h00 = (((zp[x] + zm[x]) - c[x]) - c[x]) * s0
                h11 = (((yp[x] + ym[x]) - c[x]) - c[x]) * s1
                out[i] = (h00 + h11) + ((((c[x + 1] + c[x - 1]) - c[x]) - c[x]) * s2)
            continue
        e0, e1, e2 = l0[k, j], l1[k, j], l2[k, j]
        for i in range(nx):
            x = i + 1
            h00 = (((zp[x] + zm[x]) - c[x]) - c[x]) * s0
            h11 = (((yp[x] + ym[x]) - c[x]) - c[x]) * s1
            h22 = (((c[x + 1] + c[x - 1]) - c[x]) - c[x]) * s2
            out[i] = (h00 + h11) + h22
            h01 = (((pp[x] - pm[x]) - mp[x]) + mm[x]) * s3
            h02 = (((zp[x + 1] - zp[x - 1]) - zm[x + 1]) + zm[x - 1]) * s4
            h12 = (((yp[x + 1] - yp[x - 1]) - ym[x + 1]) + ym[x - 1]) * s5
            e0[i], e1[i], e2[i] = sym3_values(h00, h01, h02, h11, h12, h22)


@njit(nogil=True, cache=True, fastmath={"arcp", "nsz"})
def hessian2(g, origin, s, lap, l0, l1, with_eigen, lo, hi):
    """Laplacian and (with `with_eigen`) Hessian eigenvalues, largest first, of rows ``lo..hi-1``.

    `s` holds the three float32 factors ``1/s0**2, 1/s1**2, 0.25/(s0 s1)``.
    """
    nx = lap.shape[1]
    s0, s1, s2 = s[0], s[1], s[2]
    for r in range(lo, hi):
        y, x0 = r + origin[0] + 1, origin[1]
        c, yp, ym = g[y, x0:x0 + nx + 2], g[y + 1, x0:x0 + nx + 2], g[y - 1, x0:x0 + nx + 2]
        out = lap[r]
        if not with_eigen:
            for i in range(nx):
                x = i + 1
                out[i] = ((((yp[x] + ym[x]) - c[x]) - c[x]) * s0) + ((((c[x + 1] + c[x - 1]) - c[x]) - c[x]) * s1)
            continue
        e0, e1 = l0[r], l1[r]
        for i in range(nx):
            x = i + 1
            h00 = (((yp[x] + ym[x]) - c[x]) - c[x]) * s0
            h11 = (((c[x + 1] + c[x - 1]) - c[x]) - c[x]) * s1
            out[i] = h00 + h11
            h01 = (((yp[x + 1] - yp[x - 1]) - ym[x + 1]) + ym[x - 1]) * s2
            e0[i], e1[i] = sym2_values(h00, h01, h11)
