"""Gaussian smoothing, derivative and eigenvalue fields of the filter bank, on threads shared by a block.

:func:`gaussian_filter` gives exactly the float32 values of ``scipy.ndimage.gaussian_filter(x,
sigma, mode="reflect", truncate=truncate, output=np.float32)``: SciPy's weights, one pass per axis
in axis order, float64 sums, a float32 result after each pass. :func:`eigenvalues` gives the
closed-form eigenvalues of :mod:`pixlearn.classical.eigen` (one pass per pixel in the numba kernels
of :mod:`pixlearn.classical.eigen_kernels`). Smoothing runs the numba kernels of
:mod:`pixlearn.classical.filter_kernels`, vectorised along the contiguous axis (about twice as
fast as SciPy on one core; SciPy without numba); both spread ranges of rows or pixels over the
threads of a :class:`Workers`, one thread pool for all the passes of a block (starting threads
per pass costs more than a small pass takes). :func:`gradient_magnitude`, :func:`gradient_products`
and :func:`hessian_fields` take central finite differences of a smoothed image in one pass per
field (kernels of :mod:`pixlearn.classical.derivative_kernels`), with the same float32 results as
the NumPy expressions they replace; the Hessian's eigenvalues are computed in the same pass, from
entries that are never stored (on one VNC block of 5 x 512 x 512 at seven scales: 0.16 -> 0.04 s
for Laplacians and Hessian eigenvalues, 2 threads, AVX2).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import itertools
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from pixlearn.classical.eigen import eigenvalues_from_tensor

__all__ = [
    "Workers", "eigenvalues", "gaussian_filter", "gaussian_weights", "gradient_magnitude", "gradient_products",
    "hessian_fields", "workers",
]

#: Rows per thread below which a kernel runs in one thread.
MIN_ROWS_PER_THREAD = 64
#: Columns of the inner axes per task of a smoothing pass along a middle axis (float64 sums: 16 KiB).
MIDDLE_BLOCK = 2048


@dataclasses.dataclass(frozen=True)
class Workers:
    """Threads that the kernels of one block share (``pool`` ``None``: the calling thread only)."""

    pool: ThreadPoolExecutor | None = None
    threads: int = 1

    def run(self, kernel: Any, args: tuple[Any, ...], rows: int) -> None:
        """``kernel(*args, lo, hi)`` over balanced ranges of ``rows`` on the threads (kernels that
        release the GIL)."""
        threads = max(1, min(self.threads, rows // MIN_ROWS_PER_THREAD))
        if self.pool is None or threads == 1:
            kernel(*args, 0, rows)
            return
        bounds = np.linspace(0, rows, threads + 1).astype(np.int64)
        list(self.pool.map(lambda i: kernel(*args, int(bounds[i]), int(bounds[i + 1])), range(threads)))


@contextlib.contextmanager
def workers(n_threads: int | None = None) -> Iterator[Workers]:
    """A :class:`Workers` of `n_threads` threads (default: all cores), shut down on exit."""
    threads = max(1, os.cpu_count() or 1) if n_threads is None or n_threads < 1 else int(n_threads)
    if threads == 1:
        yield Workers()
        return
    with ThreadPoolExecutor(threads) as pool:
        yield Workers(pool, threads)


def _kernels(name: str = "filter_kernels") -> Any | None:
    """The numba kernel module `name` of :mod:`pixlearn.classical`, ``None`` without numba."""
    try:
        return importlib.import_module(f"pixlearn.classical.{name}")
    except ImportError:  # pragma: no cover - numba is a dependency
        return None


def gaussian_weights(sigma: float, truncate: float) -> np.ndarray:
    """SciPy's Gaussian kernel: radius ``int(truncate * sigma + 0.5)``, float64, summing to 1.

    Examples
    --------
    >>> w = gaussian_weights(1.0, 3.0)
    >>> w.shape, round(float(w.sum()), 12)
    ((7,), 1.0)
    """
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (float(sigma) * float(sigma)) * x**2)
    return phi / phi.sum()


def gaussian_filter(
    x: np.ndarray, sigma: Sequence[float], truncate: float, *, work: Workers | None = None
) -> np.ndarray:
    """Gaussian smoothing with half-sample reflection at the borders, equal to SciPy's.

    Parameters
    ----------
    x : ndarray, float32
    sigma : sequence of float
        Standard deviation in pixels per axis; an axis whose kernel radius is 0 is left as it is
        (SciPy multiplies it by a weight of exactly 1).
    truncate : float
        Kernels end at `truncate` standard deviations.
    work : Workers, optional
        Threads to use (default: the calling thread). They do not change the result.

    Returns
    -------
    smoothed : ndarray of the shape of `x`, float32
        A new array, equal to ``scipy.ndimage.gaussian_filter(x, sigma, mode="reflect",
        truncate=truncate, output=np.float32)``.

    Examples
    --------
    >>> from scipy import ndimage as ndi
    >>> x = np.random.default_rng(0).random((4, 9, 7), dtype=np.float32)
    >>> ref = ndi.gaussian_filter(x, (0.5, 2.0, 3.0), mode="reflect", truncate=3.0, output=np.float32)
    >>> bool(np.array_equal(gaussian_filter(x, (0.5, 2.0, 3.0), 3.0), ref))
    True
    """
    sigmas = [float(s) for s in sigma]
    if len(sigmas) != x.ndim:
        raise ValueError(f"{len(sigmas)} sigmas for an array of {x.ndim} axes")
    kernels, work = _kernels(), work or Workers()
    if kernels is None:  # pragma: no cover
        from scipy import ndimage as ndi

        return ndi.gaussian_filter(x, sigmas, mode="reflect", truncate=truncate, output=np.float32)
    current = np.ascontiguousarray(x, dtype=np.float32)
    for axis, s in enumerate(sigmas):
        w = gaussian_weights(s, truncate) if s > 1e-15 else np.ones(1)
        if len(w) == 1:
            continue
        n = current.shape[axis]
        out = np.empty(current.shape, np.float32)
        if axis == current.ndim - 1:
            rows = current.size // n
            work.run(kernels.along_last, (current.reshape(rows, n), out.reshape(rows, n), w), rows)
        else:
            outer = int(np.prod(current.shape[:axis], dtype=np.int64))
            view = (outer, n, current.size // max(outer * n, 1))
            blocks = -(-view[2] // MIDDLE_BLOCK)
            work.run(kernels.along_middle, (current.reshape(view), out.reshape(view), w, MIDDLE_BLOCK),
                     view[0] * n * blocks)
        current = out
    return current if current is not x else current.copy()


def eigenvalues(tensor: list[np.ndarray], ndim: int, *, work: Workers | None = None) -> tuple[np.ndarray, ...]:
    """Eigenvalues, largest first, of a field of symmetric matrices given by their upper triangles.

    The one-pass numba kernels of :mod:`pixlearn.classical.eigen_kernels` (float64 arithmetic,
    polynomial arc cosine; NumPy's :func:`pixlearn.classical.eigen.eigenvalues_from_tensor`
    without numba), on ranges of pixels spread over the threads.

    Parameters
    ----------
    tensor : list of ndarray, same shape
        The ``ndim * (ndim + 1) / 2`` entries in ``itertools.combinations_with_replacement``
        order, as :func:`~pixlearn.classical.eigen.eigenvalues_from_tensor` takes them.
    ndim : int
        2 or 3.
    work : Workers, optional

    Returns
    -------
    eigenvalues : tuple of ndarray
        `ndim` float32 arrays of the entries' shape, within float32 rounding of those of
        :func:`~pixlearn.classical.eigen.eigenvalues_from_tensor` (closer to the exact values).

    Examples
    --------
    >>> entries = [np.full((2, 2), v, np.float32) for v in (1.0, 0.0, 0.0, 2.0, 0.0, 3.0)]
    >>> [float(v[0, 0]) for v in eigenvalues(entries, 3)]
    [3.0, 2.0, 1.0]
    """
    if ndim not in (2, 3) or len(tensor) != ndim * (ndim + 1) // 2:
        raise ValueError(f"{len(tensor)} tensor entries for {ndim}x{ndim} matrices")
    shape = tensor[0].shape
    flats = [np.ascontiguousarray(t).reshape(-1) for t in tensor]
    outs = [np.empty(flats[0].size, np.float32) for _ in range(ndim)]
    kernels = _kernels("eigen_kernels")
    if kernels is not None:
        kernel = kernels.sym3_range if ndim == 3 else kernels.sym2_range
    else:  # pragma: no cover - numba is a dependency

        def kernel(*args: np.ndarray | int) -> None:
            lo, hi = int(args[-2]), int(args[-1])
            for o, v in zip(outs, eigenvalues_from_tensor([f[lo:hi] for f in flats], ndim)):
                o[lo:hi] = v

    (work or Workers()).run(kernel, (*flats, *outs), flats[0].size)
    return tuple(o.reshape(shape) for o in outs)


def _shift(region: Sequence[slice], offsets: dict[int, int]) -> tuple[slice, ...]:
    """`region` (unpadded coordinates) moved by `offsets` per axis, in the 1-padded array."""
    return tuple(slice(r.start + 1 + offsets.get(a, 0), r.stop + 1 + offsets.get(a, 0)) for a, r in enumerate(region))


def _difference(g: np.ndarray, region: Sequence[slice], axis: int, scale: np.float32) -> np.ndarray:
    d = np.subtract(g[_shift(region, {axis: 1})], g[_shift(region, {axis: -1})])
    d *= scale
    return d


def _derivative_run(name: str, g: np.ndarray, region: Sequence[slice], scales: np.ndarray,
                    outs: Sequence[np.ndarray], extra: tuple[Any, ...], work: Workers | None) -> bool:
    """Run the kernel `name` + ``2``/``3`` of :mod:`~pixlearn.classical.derivative_kernels` over the
    rows of `outs`; ``False`` (nothing done) without numba."""
    kernels = _kernels("derivative_kernels")
    if kernels is None:  # pragma: no cover - numba is a dependency
        return False
    kernel = getattr(kernels, f"{name}{g.ndim}")
    origin = np.array([r.start for r in region], np.int64)
    rows = int(np.prod(outs[0].shape[:-1], dtype=np.int64))
    (work or Workers()).run(kernel, (np.ascontiguousarray(g), origin, scales, *outs, *extra), rows)
    return True


def _extent(region: Sequence[slice]) -> tuple[int, ...]:
    return tuple(r.stop - r.start for r in region)


def gradient_magnitude(g: np.ndarray, core: Sequence[slice], sp: Sequence[float], *,
                       work: Workers | None = None) -> np.ndarray:
    """Gradient magnitude by central differences on `core` of a smoothed image.

    Parameters
    ----------
    g : ndarray, float32
        The smoothed image padded by one pixel on every side (half-sample reflection).
    core : sequence of slice
        The region wanted, in the coordinates of the unpadded image.
    sp : sequence of float
        Voxel spacing per axis: differences are ``(g[i + 1] - g[i - 1]) * (0.5 / s)``.
    work : Workers, optional

    Returns
    -------
    magnitude : ndarray of the shape of `core`, float32
        ``sqrt(d0**2 + d1**2 (+ d2**2))`` in float32, the same bits as NumPy computes it.

    Examples
    --------
    >>> g = np.pad(np.arange(5, dtype=np.float32).reshape(1, 5).repeat(3, 0), 1, mode="symmetric")
    >>> gradient_magnitude(g, (slice(1, 2), slice(1, 4)), (1.0, 1.0)).tolist()
    [[1.0, 1.0, 1.0]]
    """
    s = np.array([0.5 / a for a in sp], np.float32)
    mag = np.empty(_extent(core), np.float32)
    if not _derivative_run("gradient_magnitude", g, core, s, [mag], (), work):  # pragma: no cover
        grads = [_difference(g, core, a, s[a]) for a in range(len(sp))]
        np.square(grads[0], out=mag)
        for d in grads[1:]:
            mag += np.square(d)
        np.sqrt(mag, out=mag)
    return mag


def gradient_products(g: np.ndarray, region: Sequence[slice], sp: Sequence[float], *,
                      work: Workers | None = None) -> list[np.ndarray]:
    """Products of the gradient components on `region` (the structure tensor before its smoothing).

    Parameters are those of :func:`gradient_magnitude`. Returns the float32 products ``d_a * d_b``
    in ``itertools.combinations_with_replacement`` order (3 arrays in 2D, 6 in 3D).

    Examples
    --------
    >>> g = np.pad(np.arange(5, dtype=np.float32).reshape(1, 5).repeat(3, 0), 1, mode="symmetric")
    >>> [p.tolist() for p in gradient_products(g, (slice(1, 2), slice(2, 3)), (1.0, 1.0))]
    [[[0.0]], [[0.0]], [[1.0]]]
    """
    s = np.array([0.5 / a for a in sp], np.float32)
    pairs = list(itertools.combinations_with_replacement(range(len(sp)), 2))
    products = [np.empty(_extent(region), np.float32) for _ in pairs]
    if not _derivative_run("gradient_products", g, region, s, products, (), work):  # pragma: no cover
        grads = [_difference(g, region, a, s[a]) for a in range(len(sp))]
        products = [np.multiply(grads[a], grads[b]) for a, b in pairs]
    return products


def hessian_fields(g: np.ndarray, core: Sequence[slice], sp: Sequence[float], with_eigen: bool, *,
                   work: Workers | None = None) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Laplacian and Hessian eigenvalues by finite differences on `core` of a smoothed image.

    Parameters are those of :func:`gradient_magnitude`, plus `with_eigen`: whether to compute the
    eigenvalues. Second differences are ``(g[i + 1] + g[i - 1] - 2 g[i]) / s**2``, mixed ones the
    four-point stencil times ``0.25 / (s_a * s_b)``, in float32.

    Returns
    -------
    laplacian : ndarray of the shape of `core`, float32
    eigenvalues : tuple of ndarray
        Largest first, as :func:`eigenvalues` gives them from the same entries; empty without
        `with_eigen`.

    Examples
    --------
    >>> g = np.pad(np.square(np.arange(5, dtype=np.float32)).reshape(1, 5).repeat(3, 0), 1, mode="symmetric")
    >>> lap, (big, small) = hessian_fields(g, (slice(1, 2), slice(1, 4)), (1.0, 1.0), True)
    >>> lap.tolist(), big.tolist(), small.tolist()
    ([[2.0, 2.0, 2.0]], [[2.0, 2.0, 2.0]], [[0.0, 0.0, 0.0]])
    """
    ndim = len(sp)
    mixed = list(itertools.combinations(range(ndim), 2))
    s = np.array([1.0 / (a * a) for a in sp] + [0.25 / (sp[a] * sp[b]) for a, b in mixed], np.float32)
    shape = _extent(core)
    lap = np.empty(shape, np.float32)
    eig = tuple(np.empty(shape if with_eigen else (1,) * ndim, np.float32) for _ in range(ndim))
    if not _derivative_run("hessian", g, core, s, [lap, *eig], (with_eigen,), work):  # pragma: no cover
        eig = _hessian_numpy(g, core, s, lap, with_eigen, work)
    return lap, eig if with_eigen else ()


def _hessian_numpy(g: np.ndarray, core: Sequence[slice], s: np.ndarray, lap: np.ndarray, with_eigen: bool,
                   work: Workers | None) -> tuple[np.ndarray, ...]:  # pragma: no cover - numba is a dependency
    """:func:`hessian_fields` in NumPy: the Laplacian into `lap`; the eigenvalues (or ``()``)."""
    ndim = g.ndim
    centre = g[_shift(core, {})]
    hess = {}
    for a in range(ndim):
        h = np.add(g[_shift(core, {a: 1})], g[_shift(core, {a: -1})])
        h -= centre
        h -= centre
        h *= s[a]
        hess[a, a] = h
    lap[...] = hess[0, 0]
    for a in range(1, ndim):
        lap += hess[a, a]
    if not with_eigen:
        return ()
    for k, (a, b) in enumerate(itertools.combinations(range(ndim), 2)):
        h = np.subtract(g[_shift(core, {a: 1, b: 1})], g[_shift(core, {a: 1, b: -1})])
        h -= g[_shift(core, {a: -1, b: 1})]
        h += g[_shift(core, {a: -1, b: -1})]
        h *= s[ndim + k]
        hess[a, b] = h
    tensor = [hess[a, b] for a, b in itertools.combinations_with_replacement(range(ndim), 2)]
    return eigenvalues(tensor, ndim, work=work)
