"""Fast filters: smoothing equal to SciPy, derivative fields equal to the NumPy finite differences, any threads."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("numba")

from scipy import ndimage as ndi  # noqa: E402

from pixlearn.classical.fast_filters import (  # noqa: E402
    eigenvalues,
    gaussian_filter,
    gradient_magnitude,
    gradient_products,
    hessian_fields,
    workers,
)

#: Image shape, core and spacing; the cores have over 128 rows, so that two threads share them.
CASES = [
    ((150, 37), (slice(2, 148), slice(0, 37)), (1.0, 0.7)),
    ((6, 41, 30), (slice(0, 6), slice(3, 37), slice(1, 29)), (10.87, 1.0, 1.0)),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("shape", "sigma"),
    [((3, 40, 2100), (0.1, 1.5, 2.0)), ((70, 5, 9), (3.0, 1.0, 0.0)), ((130, 4500), (2.0, 0.7)), ((0, 7, 5), (1.0, 1.0, 1.0))],
)
def test_smoothing_equals_scipy(shape, sigma, threads):
    """Thin stacks, inner axes wider than a column block (and not a multiple of it), radius-0 axes."""
    x = np.random.default_rng(5).normal(size=shape).astype(np.float32)
    want = ndi.gaussian_filter(x, sigma, mode="reflect", truncate=3.0, output=np.float32)
    with workers(threads) as work:
        got = gaussian_filter(x, sigma, 3.0, work=work)
    assert got.dtype == np.float32 and np.array_equal(got, want)


def _padded(shape: tuple[int, ...], seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return np.pad(x, 1, mode="symmetric")


def _at(g: np.ndarray, core: tuple[slice, ...], offsets: dict[int, int]) -> np.ndarray:
    return g[tuple(slice(c.start + 1 + offsets.get(a, 0), c.stop + 1 + offsets.get(a, 0)) for a, c in enumerate(core))]


def _grads(g, core, sp):
    out = []
    for a, s in enumerate(sp):
        d = np.subtract(_at(g, core, {a: 1}), _at(g, core, {a: -1}))
        d *= np.float32(0.5 / s)
        out.append(d)
    return out


def _hessian(g, core, sp):
    centre = _at(g, core, {})
    hess = {}
    for a, s in enumerate(sp):
        h = np.add(_at(g, core, {a: 1}), _at(g, core, {a: -1}))
        h -= centre
        h -= centre
        h *= np.float32(1.0 / (s * s))
        hess[a, a] = h
    for a, b in itertools.combinations(range(len(sp)), 2):
        h = np.subtract(_at(g, core, {a: 1, b: 1}), _at(g, core, {a: 1, b: -1}))
        h -= _at(g, core, {a: -1, b: 1})
        h += _at(g, core, {a: -1, b: -1})
        h *= np.float32(0.25 / (sp[a] * sp[b]))
        hess[a, b] = h
    return hess


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("shape", "core", "sp"), CASES)
def test_gradients_are_the_numpy_bits(shape, core, sp, threads):
    g = _padded(shape, 0)
    grads = _grads(g, core, sp)
    magnitude = np.square(grads[0])
    for d in grads[1:]:
        magnitude += np.square(d)
    np.sqrt(magnitude, out=magnitude)
    with workers(threads) as work:
        assert np.array_equal(gradient_magnitude(g, core, sp, work=work), magnitude)
        products = gradient_products(g, core, sp, work=work)
    pairs = list(itertools.combinations_with_replacement(range(len(sp)), 2))
    assert len(products) == len(pairs)
    for p, (a, b) in zip(products, pairs):
        assert p.dtype == np.float32 and np.array_equal(p, grads[a] * grads[b])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("shape", "core", "sp"), CASES)
def test_hessian_fields_match_the_numpy_entries(shape, core, sp, threads):
    g = _padded(shape, 1)
    hess = _hessian(g, core, sp)
    ndim = len(sp)
    laplacian = hess[0, 0].copy()
    for a in range(1, ndim):
        laplacian += hess[a, a]
    reference = eigenvalues([hess[a, b] for a, b in itertools.combinations_with_replacement(range(ndim), 2)], ndim)
    with workers(threads) as work:
        lap, eig = hessian_fields(g, core, sp, True, work=work)
        lap_only, none = hessian_fields(g, core, sp, False, work=work)
    assert np.array_equal(lap, laplacian) and np.array_equal(lap_only, laplacian) and none == ()
    spread = max(float(np.abs(r).max()) for r in reference)
    assert len(eig) == ndim
    for got, want in zip(eig, reference):
        assert got.shape == laplacian.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * spread)
    assert all((eig[i] >= eig[i + 1]).all() for i in range(ndim - 1))


def test_a_quadratic_has_its_exact_curvature():
    z, y, x = np.meshgrid(np.arange(5.0), np.arange(9.0), np.arange(11.0), indexing="ij")
    image = (3.0 * z**2 + 0.5 * y**2 - x**2 + 2.0 * y * x).astype(np.float32)
    g = np.pad(image, 1, mode="symmetric")
    core = (slice(1, 4), slice(1, 8), slice(1, 10))  # away from the reflected border
    lap, eig = hessian_fields(g, core, (1.0, 1.0, 1.0), True)
    np.testing.assert_allclose(lap, 2 * 3.0 + 2 * 0.5 - 2 * 1.0, rtol=0, atol=1e-4)
    want = np.sort(np.linalg.eigvalsh(np.array([[6.0, 0, 0], [0, 1.0, 2.0], [0, 2.0, -2.0]])))[::-1]
    for got, value in zip(eig, want):
        np.testing.assert_allclose(got, value, rtol=0, atol=1e-4)
