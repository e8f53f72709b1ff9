"""One-pass eigenvalue kernels: polynomial arc cosine, agreement with LAPACK, threads change nothing."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from pixlearn.classical import eigen_kernels  # noqa: E402
from pixlearn.classical.eigen import eigenvalues_from_tensor  # noqa: E402
from pixlearn.classical.fast_filters import eigenvalues, workers  # noqa: E402


def _acos(x: np.ndarray) -> np.ndarray:
    return np.array([eigen_kernels.acos_poly.py_func(float(v)) for v in x])


def test_polynomial_arc_cosine_is_within_its_stated_error():
    x = np.concatenate([np.linspace(-1.0, 1.0, 20001), [-1.0, -0.9999999, 0.0, 0.9999999, 1.0]])
    assert np.abs(_acos(x) - np.arccos(x)).max() < 6e-10
    compiled = np.array([eigen_kernels.acos_poly(float(v)) for v in x[::97]])
    np.testing.assert_allclose(compiled, np.arccos(x[::97]), rtol=0, atol=6e-10)


def _symmetric(n: int, ndim: int, seed: int) -> np.ndarray:
    m = np.random.default_rng(seed).normal(size=(n, ndim, ndim))
    m = m + m.transpose(0, 2, 1)
    if ndim == 3:
        m[:4] = np.diag([1.0, 1.0, 1.0])  # triple eigenvalue: zero spread
        m[4:8] = np.diag([2.0, 2.0, -1.0])  # double eigenvalue, largest
        m[8:12] = np.diag([2.0, -1.0, -1.0])  # double eigenvalue, smallest
        m[12:16] = 0.0
        m[16:20] *= 1e-30  # tiny entries
    return m


@pytest.mark.parametrize("ndim", [2, 3])
def test_kernel_eigenvalues_match_lapack(ndim):
    m = _symmetric(3000, ndim, 3).astype(np.float32)
    pairs = [(i, j) for i in range(ndim) for j in range(i, ndim)]
    entries = [np.ascontiguousarray(m[:, i, j]) for i, j in pairs]
    got = np.stack(eigenvalues(entries, ndim), -1)
    ref = np.linalg.eigvalsh(m.astype(np.float64))[:, ::-1]
    scale = np.abs(ref).max(axis=1, keepdims=True)
    assert np.all(np.abs(got - ref) <= 1e-6 * scale + 1e-37)
    assert np.all(np.diff(got, axis=1) <= 0)  # largest first
    numpy_path = np.stack(eigenvalues_from_tensor(entries, ndim), -1)
    np.testing.assert_allclose(got, numpy_path, rtol=0, atol=1e-4 * float(scale.max()))


def test_threads_do_not_change_the_eigenvalues():
    m = _symmetric(50_000, 3, 4).astype(np.float32)
    entries = [np.ascontiguousarray(m[:, i, j]).reshape(50, 1000) for i in range(3) for j in range(i, 3)]
    one = eigenvalues(entries, 3)
    with workers(2) as work:
        two = eigenvalues(entries, 3, work=work)
    for a, b in zip(one, two):
        assert a.shape == (50, 1000)
        assert np.array_equal(a, b)


def test_wrong_entry_count_is_refused():
    with pytest.raises(ValueError, match="5 tensor entries"):
        eigenvalues([np.zeros(3, np.float32)] * 5, 3)
