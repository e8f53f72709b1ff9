"""Closed-form eigenvalues of fields of symmetric 2x2 and 3x3 matrices, vectorised.

The Hessian and structure-tensor features of :mod:`pixlearn.classical.features` need the
eigenvalues of one small symmetric matrix per pixel; these closed forms (the 2x2 formula and the
trigonometric method for 3x3) work on whole arrays of entries at once.
"""

from __future__ import annotations

import numpy as np


def eigenvalues_sym2(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of the symmetric 2x2 matrices ``[[a, b], [b, c]]``, largest first.

    Parameters
    ----------
    a, b, c : ndarray, same shape, float

    Returns
    -------
    l0, l1 : ndarray
        ``l0 >= l1``.

    Examples
    --------
    >>> [v.tolist() for v in eigenvalues_sym2(np.array([2.0]), np.array([0.0]), np.array([3.0]))]
    [[3.0], [2.0]]
    """
    half_diff = (a - c) * 0.5
    root = np.hypot(half_diff, b)
    mean = (a + c) * 0.5
    return mean + root, mean - root


def eigenvalues_sym3(
    a11: np.ndarray, a22: np.ndarray, a33: np.ndarray, a12: np.ndarray, a13: np.ndarray, a23: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues of symmetric 3x3 matrices by the trigonometric method, largest first.

    Parameters
    ----------
    a11, a22, a33, a12, a13, a23 : ndarray, same shape, float
        The six distinct entries; not modified.

    Returns
    -------
    l0, l1, l2 : ndarray
        ``l0 >= l1 >= l2``, in the floating dtype of the input (at least float32).

    Examples
    --------
    >>> e = eigenvalues_sym3(*[np.array([v]) for v in (1.0, 2.0, 3.0, 0.0, 0.0, 0.0)])
    >>> [round(float(v[0]), 6) for v in e]
    [3.0, 2.0, 1.0]
    """
    dtype = np.result_type(a11, np.float32)
    q = np.add(a11, a22, dtype=dtype)
    q += a33
    q *= 1.0 / 3.0
    b11, b22, b33 = np.subtract(a11, q), np.subtract(a22, q), np.subtract(a33, q)
    # p2 = (|B|_F^2) / 6 with B = A - q I
    p2 = np.square(a12)
    tmp = np.square(a13)
    p2 += tmp
    np.square(a23, out=tmp)
    p2 += tmp
    p2 *= 2.0
    for b in (b11, b22, b33):
        np.square(b, out=tmp)
        p2 += tmp
    p2 *= 1.0 / 6.0
    det = _determinant(b11, b22, b33, a12, a13, a23, tmp)
    del b11, b22, b33
    # r = det(B) / (2 p^3), phi = acos(r) / 3
    p = np.sqrt(p2)
    np.multiply(p2, p, out=tmp)
    np.maximum(tmp, np.finfo(dtype).tiny, out=tmp)
    tmp *= 2.0
    det /= tmp
    np.clip(det, -1.0, 1.0, out=det)
    phi = np.arccos(det, out=det)
    phi *= 1.0 / 3.0
    p *= 2.0
    l0 = np.cos(phi)
    l0 *= p
    l0 += q
    phi += 2.0 * np.pi / 3.0
    l2 = np.cos(phi, out=phi)
    l2 *= p
    l2 += q
    # l1 = 3 q - l0 - l2
    l1 = np.multiply(q, 3.0, out=q)
    l1 -= l0
    l1 -= l2
    return l0, l1, l2


def _determinant(b11: np.ndarray, b22: np.ndarray, b33: np.ndarray, a12: np.ndarray, a13: np.ndarray,
                 a23: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """``det`` of the symmetric matrices with diagonal `b11, b22, b33` and off-diagonal `a12, a13,
    a23` (a new array; `tmp`, of their shape, is scratch)."""
    det = np.multiply(b22, b33)
    np.square(a23, out=tmp)
    det -= tmp
    det *= b11
    np.multiply(a12, b33, out=tmp)
    t2 = np.multiply(a23, a13)
    tmp -= t2
    tmp *= a12
    det -= tmp
    np.multiply(a12, a23, out=tmp)
    np.multiply(b22, a13, out=t2)
    tmp -= t2
    tmp *= a13
    det += tmp
    return det


def eigenvalues_from_tensor(
    tensor: list[np.ndarray], ndim: int, chunk: int = 16384
) -> tuple[np.ndarray, ...]:
    """Eigenvalues of a field of symmetric matrices given by their upper-triangle entries.

    Works through the pixels in cache-sized chunks: the closed forms take a few dozen
    element-wise operations, which are memory-bound on whole arrays.

    Parameters
    ----------
    tensor : list of ndarray, same shape
        The ``ndim * (ndim + 1) / 2`` distinct entries in ``itertools.combinations_with_replacement``
        order: ``(a11, a12, a22)`` in 2D, ``(a11, a12, a13, a22, a23, a33)`` in 3D.
    ndim : int
        Size of the matrices, 2 or 3.
    chunk : int
        Pixels per step.

    Returns
    -------
    eigenvalues : tuple of ndarray
        `ndim` float32 arrays of the entries' shape, largest first.

    Examples
    --------
    >>> entries = [np.full((2, 2), v) for v in (2.0, 0.0, 3.0)]
    >>> [v.tolist() for v in eigenvalues_from_tensor(entries, 2)]
    [[[3.0, 3.0], [3.0, 3.0]], [[2.0, 2.0], [2.0, 2.0]]]
    """
    shape = tensor[0].shape
    flats = [np.ascontiguousarray(t).reshape(-1) for t in tensor]
    outs = [np.empty(flats[0].size, np.float32) for _ in range(ndim)]
    for start in range(0, flats[0].size, chunk):
        part = [f[start : start + chunk] for f in flats]
        values: tuple[np.ndarray, ...]
        if ndim == 2:
            values = eigenvalues_sym2(*part)
        else:
            a11, a12, a13, a22, a23, a33 = part
            values = eigenvalues_sym3(a11, a22, a33, a12, a13, a23)
        for o, v in zip(outs, values):
            o[start : start + chunk] = v
    return tuple(o.reshape(shape) for o in outs)
