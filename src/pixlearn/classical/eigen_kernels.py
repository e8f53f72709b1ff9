"""The numba kernels behind :func:`pixlearn.classical.fast_filters.eigenvalues`: one pass per pixel.

Importing this module needs numba (``ImportError`` otherwise); each kernel is compiled on its first
call or loaded from numba's on-disk cache, releases the GIL and works on a range of pixels, so that
threads can share the arrays. Each pixel is read once and its eigenvalues written once, in float64
arithmetic (the NumPy closed forms of :mod:`pixlearn.classical.eigen` make about thirty float32
passes over whole chunks instead).

The 3x3 kernel uses the same trigonometric method as
:func:`~pixlearn.classical.eigen.eigenvalues_sym3`, with the arc cosine and the cosine and sine of
the third of it as polynomials, so that the loop has no call into the maths library and the
compiler can vectorise it: ``acos(x) = sqrt(1 - x) * P(x)`` on ``[0, 1]`` (a least-squares fit of
degree 9 at Chebyshev nodes, largest error 6e-10, reflected as ``pi - acos(-x)`` below 0), and
Taylor polynomials of ``cos`` and ``sin`` on ``[0, pi / 3]`` (largest error about 4e-9). The
eigenvalue error this adds is a few 1e-9 of the matrix's spread, far below float32 rounding.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["ACOS_COEFFICIENTS", "acos_poly", "sym2_range", "sym2_values", "sym3_range", "sym3_values"]


#: ``acos(x) / sqrt(1 - x)`` on ``[0, 1]`` as a polynomial, lowest power first: the least-squares
#: fit of degree 9 (``numpy.polynomial.Polynomial.fit``) at 400 Chebyshev nodes of ``[0, 1]``.
#: ``sqrt(1 - x) * P(x)`` is then within 6e-10 of ``acos(x)`` (a test measures it).
ACOS_COEFFICIENTS: tuple[float, ...] = (
    1.5707963262615388, -0.21460172591631801, 0.08904479608268424, -0.05074080130815542,
    0.033314914452920764, -0.022844571797207162, 0.01457591711183515, -0.00744564575702707,
    0.0025186261943568114, -0.0004042733463462045,
)
_A0, _A1, _A2, _A3, _A4, _A5, _A6, _A7, _A8, _A9 = ACOS_COEFFICIENTS
_SQRT3 = math.sqrt(3.0)


@njit(nogil=True, cache=True, inline="always")
def acos_poly(x):
    """Arc cosine of ``x`` in ``[-1, 1]`` from :data:`ACOS_COEFFICIENTS` (branch-free)."""
    a = abs(x)
    p = _A9
    p = p * a + _A8
    p = p * a + _A7
    p = p * a + _A6
    p = p * a + _A5
    p = p * a + _A4
    p = p * a + _A3
    p = p * a + _A2
    p = p * a + _A1
    p = p * a + _A0
    r = math.sqrt(max(1.0 - a, 0.0)) * p
    return r if x >= 0.0 else math.pi - r


@njit(nogil=True, cache=True, inline="always")
def cos_sin_small(t):
    """``cos(t)`` and ``sin(t)`` for ``t`` in ``[0, pi / 3]`` by their Taylor polynomials."""
    t2 = t * t
    c = 1.0 - t2 / 2.0 * (1.0 - t2 / 12.0 * (1.0 - t2 / 30.0 * (1.0 - t2 / 56.0 * (1.0 - t2 / 90.0))))
    s = t * (1.0 - t2 / 6.0 * (1.0 - t2 / 20.0 * (1.0 - t2 / 42.0 * (1.0 - t2 / 72.0 * (1.0 - t2 / 110.0)))))
    return c, s


@njit(nogil=True, cache=True, inline="always")
def sym3_values(a11, a12, a13, a22, a23, a33):
    """Eigenvalues, largest first, of one symmetric 3x3 matrix (float64 arithmetic)."""
    third = 1.0 / 3.0
    e11 = np.float64(a11)
    e12 = np.float64(a12)
    e13 = np.float64(a13)
    e22 = np.float64(a22)
    e23 = np.float64(a23)
    e33 = np.float64(a33)
    q = (e11 + e22 + e33) * third
    b11 = e11 - q
    b22 = e22 - q
    b33 = e33 - q
    p2 = (b11 * b11 + b22 * b22 + b33 * b33 + 2.0 * (e12 * e12 + e13 * e13 + e23 * e23)) / 6.0
    det = b11 * (b22 * b33 - e23 * e23) - e12 * (e12 * b33 - e23 * e13) + e13 * (e12 * e23 - b22 * e13)
    p = math.sqrt(p2)
    r = det / max(2.0 * p2 * p, 1e-300)
    r = min(max(r, -1.0), 1.0)
    c, s = cos_sin_small(acos_poly(r) * third)
    big = q + 2.0 * p * c
    small = q - p * (c + _SQRT3 * s)
    return big, 3.0 * q - big - small, small


@njit(nogil=True, cache=True, inline="always")
def sym2_values(a11, a12, a22):
    """Eigenvalues, largest first, of one symmetric 2x2 matrix (float64 arithmetic)."""
    e11 = np.float64(a11)
    e22 = np.float64(a22)
    b = np.float64(a12)
    half_diff = (e11 - e22) * 0.5
    root = math.sqrt(half_diff * half_diff + b * b)
    mean = (e11 + e22) * 0.5
    return mean + root, mean - root


@njit(nogil=True, cache=True, fastmath={"contract", "arcp", "nsz"})
def sym3_range(a11, a12, a13, a22, a23, a33, l0, l1, l2, lo, hi):
    """Eigenvalues, largest first, of the symmetric 3x3 matrices of pixels ``lo..hi-1``.

    The inputs are the flat upper-triangle entries (any float dtype), the outputs flat float32.
    """
    for i in range(lo, hi):
        l0[i], l1[i], l2[i] = sym3_values(a11[i], a12[i], a13[i], a22[i], a23[i], a33[i])


@njit(nogil=True, cache=True, fastmath={"contract", "arcp", "nsz"})
def sym2_range(a11, a12, a22, l0, l1, lo, hi):
    """Eigenvalues, largest first, of the symmetric 2x2 matrices of pixels ``lo..hi-1``."""
    for i in range(lo, hi):
        l0[i], l1[i] = sym2_values(a11[i], a12[i], a22[i])
