"""Filter-bank features: SciPy reference values, closed-form eigenvalues, block-wise == whole image."""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest
from scipy import ndimage as ndi

import pixlearn.classical.eigen
import pixlearn.classical.features
import pixlearn.classical.filters
from pixlearn.classical.eigen import eigenvalues_sym2, eigenvalues_sym3
from pixlearn.classical.features import (
    FEATURES,
    FeatureConfig,
    compute_features,
    compute_features_block,
    feature_halo,
    feature_names,
    features_last,
    n_features,
)
from pixlearn.data.blocks import block_grid, pad_block

TRUNCATE = 3.0  # FeatureConfig's default (vigra/ilastik); SciPy's own default is 4


@pytest.mark.parametrize("module", [pixlearn.classical.features, pixlearn.classical.filters, pixlearn.classical.eigen])
def test_doctests(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0, module.__name__


def _image(shape, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    image = ndi.gaussian_filter(rng.random(shape + (channels,)), [1.0] * len(shape) + [0])
    return image.astype(np.float32)


def _get(features, cfg, n_channels, ndim, name):
    return features[..., feature_names(cfg, n_channels, ndim).index(name)]


def _padded_smooth(x, sigma_px):
    g = ndi.gaussian_filter(x.astype(np.float64), sigma_px, mode="reflect", truncate=TRUNCATE)
    return np.pad(g, 1, mode="symmetric")


def _central(gp, axis, step=1.0):
    """Central difference along `axis` of a 1-padded array, result 1-padded-less on that axis."""
    return ndi.correlate1d(gp, [-0.5 / step, 0.0, 0.5 / step], axis=axis, mode="nearest")


def _hessian_reference(x, sigma_px, spacing):
    """FD Hessian of the Gaussian-smoothed image, borders by half-sample reflection."""
    gp = _padded_smooth(x, sigma_px)
    ndim = x.ndim
    inner = (slice(1, -1),) * ndim
    hess = np.empty(x.shape + (ndim, ndim))
    for a in range(ndim):
        d2 = ndi.correlate1d(gp, [1.0, -2.0, 1.0], axis=a, mode="nearest") / spacing[a] ** 2
        hess[..., a, a] = d2[inner]
    for a, b in itertools.combinations(range(ndim), 2):
        dab = _central(_central(gp, a, spacing[a]), b, spacing[b])
        hess[..., a, b] = hess[..., b, a] = dab[inner]
    return hess


def test_gaussian_and_dog_equal_scipy():
    image = _image((40, 36))
    cfg = FeatureConfig(sigmas=(0.3, 1.0, 3.5), features=("gaussian", "difference_of_gaussians"))
    features = compute_features(image, cfg)
    assert features.dtype == np.float32 and features.shape == (40, 36, 5)
    for sigma in cfg.sigmas:
        ref = ndi.gaussian_filter(image[..., 0], sigma, mode="reflect", truncate=TRUNCATE)
        np.testing.assert_allclose(_get(features, cfg, 1, 2, f"ch0/gaussian/sigma={sigma:g}"), ref, rtol=1e-6, atol=1e-7)
    # sigma 0.3 is below derivative_min_sigma: smoothing only, no DoG
    assert "ch0/difference_of_gaussians/sigma=0.3" not in feature_names(cfg, 1, 2)
    dog = ndi.gaussian_filter(image[..., 0], 0.66 * 3.5, truncate=TRUNCATE) - ndi.gaussian_filter(
        image[..., 0], 3.5, truncate=TRUNCATE
    )
    np.testing.assert_allclose(_get(features, cfg, 1, 2, "ch0/difference_of_gaussians/sigma=3.5"), dog, rtol=1e-5, atol=1e-6)


def test_derivatives_equal_reference_2d():
    image = _image((40, 36), seed=1)
    sigma = 1.6
    cfg = FeatureConfig(sigmas=(sigma,), features=FEATURES[1:])
    features = compute_features(image, cfg)
    hess = _hessian_reference(image[..., 0], sigma, (1.0, 1.0))
    np.testing.assert_allclose(
        _get(features, cfg, 1, 2, "ch0/laplacian/sigma=1.6"), np.trace(hess, axis1=-2, axis2=-1), rtol=1e-4, atol=1e-5
    )
    # scipy.ndimage.laplace uses the same [1, -2, 1] stencil and half-sample reflection
    smooth = ndi.gaussian_filter(image[..., 0].astype(np.float64), sigma, truncate=TRUNCATE)
    np.testing.assert_allclose(
        _get(features, cfg, 1, 2, "ch0/laplacian/sigma=1.6"), ndi.laplace(smooth, mode="reflect"), rtol=1e-4, atol=1e-5
    )
    eig = np.linalg.eigvalsh(hess)[..., ::-1]
    for i in range(2):
        np.testing.assert_allclose(
            _get(features, cfg, 1, 2, f"ch0/hessian_eigenvalue_{i}/sigma=1.6"), eig[..., i], rtol=1e-4, atol=1e-5
        )
    # gradient: np.gradient uses the same central differences away from the border
    grad = np.gradient(smooth)
    magnitude = np.sqrt(grad[0] ** 2 + grad[1] ** 2)
    np.testing.assert_allclose(
        _get(features, cfg, 1, 2, "ch0/gradient_magnitude/sigma=1.6")[1:-1, 1:-1], magnitude[1:-1, 1:-1], rtol=1e-4, atol=1e-6
    )


def test_structure_tensor_equal_reference_2d():
    image = _image((30, 34), seed=2)
    sigma = 1.0
    cfg = FeatureConfig(sigmas=(sigma,), features=("structure_tensor_eigenvalues",))
    features = compute_features(image, cfg)
    gp = _padded_smooth(image[..., 0], sigma)
    grads = [_central(gp, a)[1:-1, 1:-1] for a in range(2)]
    tensor = np.empty(image.shape[:2] + (2, 2))
    for a, b in itertools.product(range(2), repeat=2):
        tensor[..., a, b] = ndi.gaussian_filter(grads[a] * grads[b], 0.5 * sigma, mode="reflect", truncate=TRUNCATE)
    eig = np.linalg.eigvalsh(tensor)[..., ::-1]
    np.testing.assert_allclose(features, eig, rtol=1e-4, atol=1e-7)
    assert (features[..., 0] >= features[..., 1]).all()


def test_filters_approximate_gaussian_derivatives():
    """At sigma >= 3.5 the finite differences agree with SciPy's Gaussian-derivative filters."""
    image = _image((64, 64), seed=3)
    cfg = FeatureConfig(sigmas=(3.5,), features=("gradient_magnitude", "laplacian"), truncate=4.0)
    features = compute_features(image, cfg)
    log = ndi.gaussian_laplace(image[..., 0], 3.5)
    magnitude = ndi.gaussian_gradient_magnitude(image[..., 0], 3.5)
    # discretisation error of [1, -2, 1] and central differences, O(1 / sigma^2)
    assert np.abs(features[..., 1] - log).max() < 0.03 * np.abs(log).max()
    assert np.abs(features[..., 0] - magnitude).max() < 0.03 * magnitude.max()


def test_hessian_3d_anisotropic_equals_reference():
    image = _image((10, 20, 18), seed=4)
    spacing = (3.0, 1.0, 1.0)
    sigma = 1.6
    cfg = FeatureConfig(sigmas=(sigma,), features=("gaussian", "hessian_eigenvalues"), spacing=spacing)
    features = compute_features(image, cfg)
    assert features.shape == (10, 20, 18, 4)
    sigma_px = [sigma / s for s in spacing]
    ref = ndi.gaussian_filter(image[..., 0], sigma_px, mode="reflect", truncate=TRUNCATE)
    np.testing.assert_allclose(features[..., 0], ref, rtol=1e-6, atol=1e-7)
    eig = np.linalg.eigvalsh(_hessian_reference(image[..., 0], sigma_px, spacing))[..., ::-1]
    scale = np.abs(eig).max()
    np.testing.assert_allclose(features[..., 1:], eig, rtol=0, atol=2e-5 * scale)
    # the spacing argument overrides the config
    iso = compute_features(image, cfg, spacing=(1.0, 1.0, 1.0))
    assert not np.allclose(iso, features)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_closed_form_eigenvalues(dtype):
    rng = np.random.default_rng(5)
    m2 = rng.normal(size=(500, 2, 2))
    m2 = (m2 + m2.transpose(0, 2, 1)).astype(dtype)
    l0, l1 = eigenvalues_sym2(m2[:, 0, 0], m2[:, 0, 1], m2[:, 1, 1])
    ref2 = np.linalg.eigvalsh(m2.astype(np.float64))[:, ::-1]
    np.testing.assert_allclose(np.stack([l0, l1], -1), ref2, rtol=1e-5, atol=1e-5)
    m3 = rng.normal(size=(500, 3, 3))
    m3 = m3 + m3.transpose(0, 2, 1)
    m3[:5] = np.diag([1.0, 1.0, 1.0])  # triple eigenvalue: p = 0
    m3[5:10] = np.diag([2.0, 2.0, -1.0])  # double eigenvalue
    m3 = m3.astype(dtype)
    entries = [m3[:, 0, 0], m3[:, 1, 1], m3[:, 2, 2], m3[:, 0, 1], m3[:, 0, 2], m3[:, 1, 2]]
    got = np.stack(eigenvalues_sym3(*entries), -1)
    assert got.dtype == dtype
    ref3 = np.linalg.eigvalsh(m3.astype(np.float64))[:, ::-1]
    # float32 trigonometric method: absolute error relative to the matrix norm
    tol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(got, ref3, rtol=0, atol=tol * np.abs(ref3).max())


@pytest.mark.parametrize(
    "shape, block, spacing",
    [((41, 37), (16, 13), None), ((12, 30, 27), (5, 11, 14), None), ((12, 30, 27), (7, 16, 9), (2.0, 1.0, 1.0))],
)
def test_blockwise_equals_whole_image(shape, block, spacing):
    image = _image(shape, channels=2, seed=6)
    cfg = FeatureConfig(sigmas=(0.3, 0.7, 1.6), spacing=spacing)
    whole = compute_features(image, cfg)
    assert whole.shape == shape + (n_features(cfg, 2, len(shape)),)
    halo = feature_halo(cfg, len(shape))
    assert all(h < s for h, s in zip(halo, shape))  # interior block edges are exercised
    seen = np.zeros(shape, bool)
    for core in (b.core for b in block_grid(shape, block)):
        part = compute_features_block(image, core, cfg)
        np.testing.assert_array_equal(part, whole[core])
        seen[core] = True
    assert seen.all()
    # feature-major layout with a reused buffer
    core = block_grid(shape, block)[0].core
    buffer = np.empty((whole.shape[-1],) + tuple(s.stop - s.start for s in core), np.float32)
    first = compute_features_block(image, core, cfg, feature_axis="first", out=buffer)
    assert first is buffer
    np.testing.assert_array_equal(np.moveaxis(first, 0, -1), whole[core])


def test_block_from_lazy_zarr_array():
    zarr = pytest.importorskip("zarr")
    image = _image((33, 29), seed=7)
    store = zarr.create_array(store={}, shape=image.shape, chunks=(8, 8, 1), dtype="float32")
    store[...] = image
    cfg = FeatureConfig(sigmas=(0.7, 1.6))
    core = (slice(10, 20), slice(5, 29))
    np.testing.assert_array_equal(compute_features_block(store, core, cfg), compute_features(image, cfg)[core])


def test_names_and_halo():
    cfg = FeatureConfig()
    names2, names3 = feature_names(cfg, 2, 2), feature_names(cfg, 1, 3)
    # ilastik default set: sigma 0.3 smoothing only, then 8 (2D) / 10 (3D) values per scale
    assert len(names2) == 2 * (1 + 6 * 8) == n_features(cfg, 2, 2)
    assert len(names3) == 1 + 6 * 10 and len(set(names3)) == len(names3)
    assert names2[0] == "ch0/gaussian/sigma=0.3" and names2[-1].startswith("ch1/structure_tensor_eigenvalue_1/")
    # truncate 3: radius(10) = 30, + 1 (differences) + radius(5) = 15 (structure tensor)
    assert feature_halo(cfg, 2) == (46, 46)
    assert feature_halo(cfg, 3, (5.0, 1.0, 1.0)) == (10, 46, 46)
    assert feature_halo(FeatureConfig(sigmas=(0.3,), features=("gaussian",)), 2) == (1, 1)


def test_helpers():
    assert pad_block((slice(0, 4), slice(6, 10)), (10, 10), (2, 3)) == (
        (slice(0, 6), slice(3, 10)),
        (slice(0, 4), slice(3, 7)),
    )
    assert len(block_grid((10, 7, 3), (4, 4, 4))) == 3 * 2 * 1
    stack = np.arange(24, dtype=np.float32).reshape(3, 2, 4)
    np.testing.assert_array_equal(features_last(stack, chunk=3), np.moveaxis(stack, 0, -1))
    with pytest.raises(ValueError, match="block_shape"):
        block_grid((4, 4), (0, 2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigmas": ()}, "empty"),
        ({"sigmas": (1.0, 0.5)}, "increasing"),
        ({"sigmas": (-1.0,)}, "positive"),
        ({"features": ("gaussian", "sobel")}, "unknown features"),
        ({"features": ("laplacian",), "sigmas": (0.3,)}, "no feature left"),
        ({"spacing": (1.0, 0.0)}, "spacing"),
        ({"dog_ratio": 1.5}, "dog_ratio"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureConfig(**kwargs)


def test_config_round_trip_and_bad_inputs():
    cfg = FeatureConfig(sigmas=(1.0, 2.0), spacing=(2.0, 1.0, 1.0))
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="canonical"):
        compute_features(np.zeros((4, 4), np.float32), cfg)
    with pytest.raises(ValueError, match="spacing"):
        compute_features(np.zeros((4, 4, 1), np.float32), cfg)  # 3 spacings for a 2D image
