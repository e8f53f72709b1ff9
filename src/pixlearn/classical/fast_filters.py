"""Gaussian smoothing and eigenvalue fields for the filter bank, on threads shared by one block.

:func:`gaussian_filter` gives exactly the float32 values of ``scipy.ndimage.gaussian_filter(x,
sigma, mode="reflect", truncate=truncate, output=np.float32)``: SciPy's weights, one pass per axis
in axis order, float64 sums, a float32 result after each pass. :func:`eigenvalues` gives the
closed-form eigenvalues of :mod:`pixlearn.classical.eigen` (one pass per pixel in the numba kernels
of :mod:`pixlearn.classical.eigen_kernels`). Smoothing runs the numba kernels of
:mod:`pixlearn.classical.filter_kernels`, vectorised along the contiguous axis (about twice as
fast as SciPy on one core; SciPy without numba); both spread ranges of rows or pixels over the
threads of a :class:`Workers`, one thread pool for all the passes of a block (starting threads
per pass costs more than a small pass takes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from pixlearn.classical.eigen import eigenvalues_from_tensor

__all__ = ["Workers", "eigenvalues", "gaussian_filter", "gaussian_weights", "workers"]

#: Rows per thread below which a kernel runs in one thread.
MIN_ROWS_PER_THREAD = 64


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
            view = (int(np.prod(current.shape[:axis], dtype=np.int64)), n, -1)
            work.run(kernels.along_middle, (current.reshape(view), out.reshape(view), w), view[0] * n)
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
