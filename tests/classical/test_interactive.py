"""The interactive session: cached features, incremental strokes, preview, uncertainty, suggestions."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import pixlearn.classical.annotation
import pixlearn.classical.feature_cache
import pixlearn.classical.interactive
import pixlearn.classical.preview
from pixlearn.classical.annotation import margin_uncertainty, scribbles_to_targets, suggest_regions
from pixlearn.classical.feature_cache import FeatureCache
from pixlearn.classical.features import FeatureConfig, compute_features
from pixlearn.classical.interactive import InteractiveSession
from pixlearn.classical.model import PixelClassifier
from pixlearn.classical.preview import PreviewConfig, make_preview_forest
from pixlearn.data.normalize import NormalizeConfig, apply_normalization, compute_normalization
from pixlearn.errors import PixlearnError

CFG = FeatureConfig(sigmas=(0.7, 1.6, 3.5))
PREVIEW = PreviewConfig(n_estimators=5, tile_shape=(16, 24), tile_shape_3d=(4, 16, 16), suggestion_tile=(8, 8), n_jobs=1)


@pytest.mark.parametrize("module", [pixlearn.classical.interactive, pixlearn.classical.preview,
                                    pixlearn.classical.annotation, pixlearn.classical.feature_cache])
def test_doctests(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0, module.__name__


def test_the_session_module_still_exports_the_names_it_documents() -> None:
    for name in pixlearn.classical.interactive.__all__:
        assert getattr(pixlearn.classical.interactive, name) is not None, name


def _strokes(labels: np.ndarray, seed: int = 0, fraction: float = 0.05) -> np.ndarray:
    from pixlearn.synthetic import simulate_scribbles

    return simulate_scribbles(labels, np.random.default_rng(seed), fraction=fraction)


def _normalised(image: np.ndarray) -> np.ndarray:
    low, high = compute_normalization(image, NormalizeConfig())
    return apply_normalization(image, low, high)


def test_preview_config_validates_and_round_trips() -> None:
    cfg = PreviewConfig(n_estimators=7, max_depth=None)
    assert PreviewConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="n_estimators"):
        PreviewConfig(n_estimators=0)
    with pytest.raises(ValueError, match="tile_shape"):
        PreviewConfig(tile_shape=(8,))
    with pytest.raises(ValueError, match="n_jobs"):
        PreviewConfig(n_jobs=0)
    assert PreviewConfig(n_jobs=-1).threads >= 1
    forest = make_preview_forest(PreviewConfig(n_estimators=3, max_depth=4, n_jobs=1))
    assert forest.n_estimators == 3 and forest.max_depth == 4 and forest.random_state == 0


def test_margin_uncertainty_is_one_minus_top_two_gap() -> None:
    p = np.array([[[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]]], np.float32)
    np.testing.assert_allclose(margin_uncertainty(p), [[0.5, 1.0]], atol=1e-6)
    assert margin_uncertainty(p).shape == (1, 2) and margin_uncertainty(p).dtype == np.float32
    with pytest.raises(ValueError, match="2 classes"):
        margin_uncertainty(np.ones((3, 1)))


def test_suggest_regions_skips_annotated_tiles_and_ranks_by_mean() -> None:
    u = np.zeros((16, 16), np.float32)
    u[0:8, 0:8] = 0.9
    u[8:16, 8:16] = 0.5
    u[0:8, 8:16] = 0.7
    annotated = np.zeros((16, 16), bool)
    annotated[2, 2] = True  # the most uncertain tile already has a stroke
    s = suggest_regions(u, annotated, (8, 8), n=2, origin=(100, 200))
    assert [x.corners for x in s] == [((100, 208), (108, 216)), ((108, 208), (116, 216))]
    np.testing.assert_allclose([x.score for x in s], [0.7, 0.5], atol=1e-6)
    volume = np.zeros((3, 8, 8), np.float32)
    volume[1] = 1.0
    s3 = suggest_regions(volume, np.zeros(volume.shape, bool), (8, 8), n=1)
    assert s3[0].corners == ((1, 0, 0), (2, 8, 8))
    with pytest.raises(ValueError, match="same|shape"):
        suggest_regions(u, annotated[:4], (8, 8))


def test_scribbles_to_targets() -> None:
    assert scribbles_to_targets(np.array([[0, 1], [3, 0]])).tolist() == [[-1, 0], [2, -1]]
    with pytest.raises(ValueError):
        scribbles_to_targets(np.array([-1]))


@pytest.mark.parametrize("ndim", [2, 3])
def test_feature_cache_equals_whole_image_features(ndim: int, blobs_2d, blobs_3d) -> None:
    image = (blobs_2d if ndim == 2 else blobs_3d)[0][..., None]
    tile = (16, 24) if ndim == 2 else (4, 16, 16)
    cache = FeatureCache(image, CFG, tile)
    whole = np.moveaxis(compute_features(image, CFG), -1, 0)
    region = (slice(3, 41), slice(5, 29)) if ndim == 2 else (slice(1, 9), slice(3, 30), slice(0, 28))
    np.testing.assert_array_equal(cache.region(region), whole[(slice(None),) + region])
    rng = np.random.default_rng(3)
    coords = tuple(rng.integers(0, n, 50) for n in image.shape[:-1])
    np.testing.assert_array_equal(cache.gather(coords), whole[(slice(None),) + coords].T)
    n_tiles = len(cache._tiles)
    cache.region(region)  # cached: computed once
    assert len(cache._tiles) == n_tiles


def test_feature_cache_is_bounded() -> None:
    image = np.random.default_rng(0).random((64, 64, 1)).astype(np.float32)
    cache = FeatureCache(image, CFG, (16, 16), max_bytes=3 * 16 * 16 * 4 * 25)
    cache.region((slice(0, 64), slice(0, 64)))
    assert len(cache._tiles) <= 3


def test_strokes_are_added_incrementally_and_match_a_full_gather(blobs_2d) -> None:
    image, labels = blobs_2d
    image = image[..., None]
    strokes = _strokes(labels)
    session = InteractiveSession(image, CFG, PREVIEW)
    half = strokes.copy()
    half[:, 20:] = 0
    assert session.update_strokes(half) == int(np.count_nonzero(half))
    assert session.update_strokes(half) == 0  # nothing new
    region = (slice(0, 48), slice(20, 40))
    assert session.update_strokes(strokes, region) == int(np.count_nonzero(strokes[:, 20:]))
    # erase one pixel and relabel another
    edited = strokes.copy()
    ys, xs = np.nonzero(strokes)
    edited[ys[0], xs[0]] = 0
    edited[ys[1], xs[1]] = 3 - strokes[ys[1], xs[1]]
    assert session.update_strokes(edited) == 2
    np.testing.assert_array_equal(session.scribbles, edited)
    assert session.n_labelled == int(np.count_nonzero(edited))
    whole = compute_features(_normalised(image), CFG)
    flat = np.flatnonzero(edited)
    np.testing.assert_array_equal(session._index, flat)
    np.testing.assert_array_equal(session._classes, edited.reshape(-1)[flat] - 1)
    np.testing.assert_allclose(session._rows, whole.reshape(-1, whole.shape[-1])[flat], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(session.targets(), edited.astype(np.int64) - 1)


def test_preview_classifies_the_blobs_and_is_deterministic(blobs_2d) -> None:
    image, labels = blobs_2d
    strokes = _strokes(labels)
    session = InteractiveSession(image[..., None], CFG, PREVIEW)
    assert session.step(np.where(strokes == 1, 1, 0).astype(np.uint8)) is None  # one class only
    assert not session.is_fitted
    labels_out, uncertainty = session.step(strokes)
    truth = (labels > 0).astype(np.uint8)
    assert labels_out.shape == truth.shape and labels_out.dtype == np.uint8
    assert np.mean(labels_out == truth) > 0.9
    assert uncertainty.shape == truth.shape and 0.0 <= uncertainty.min() and uncertainty.max() <= 1.0
    # most uncertain where the classes meet: near object borders
    from scipy import ndimage as ndi

    border = ndi.binary_dilation(truth, iterations=2) & ~ndi.binary_erosion(truth, iterations=2)
    assert uncertainty[border].mean() > uncertainty[~border].mean()
    for key in ("strokes_s", "fit_s", "predict_s", "step_s"):
        assert session.timings[key] >= 0
    # a region equals the crop of the whole prediction
    region = (slice(5, 30), slice(7, 33))
    whole = session.predict_region()
    np.testing.assert_allclose(session.predict_region(region), whole[region], atol=1e-6)
    again = InteractiveSession(image[..., None], CFG, PREVIEW)
    again.update_strokes(strokes)
    np.testing.assert_array_equal(again.fit().predict_region(), whole)


def test_suggest_avoids_strokes_and_prefers_uncertain_regions(blobs_2d) -> None:
    image, labels = blobs_2d
    strokes = _strokes(labels)
    session = InteractiveSession(image[..., None], CFG, PREVIEW)
    session.update_strokes(strokes)
    session.fit()
    suggestions = session.suggest(n=3)
    assert 1 <= len(suggestions) <= 3
    uncertainty = margin_uncertainty(session.predict_region())
    scores = [s.score for s in suggestions]
    assert scores == sorted(scores, reverse=True)
    for s in suggestions:
        assert not strokes[s.region].any()
        assert s.score == pytest.approx(float(uncertainty[s.region].mean()), abs=1e-6)


def test_session_in_3d_and_multichannel(blobs_3d) -> None:
    image, labels = blobs_3d
    rng = np.random.default_rng(1)
    two = np.stack([image, rng.random(image.shape).astype(np.float32)], axis=-1)  # (P, M, N, 2)
    strokes = _strokes(labels, fraction=0.05)
    session = InteractiveSession(two, CFG, PREVIEW)
    plane = (slice(5, 6), slice(0, 32), slice(0, 28))
    out, uncertainty = session.step(strokes, plane)
    assert out.shape == (1, 32, 28) and uncertainty.shape == (1, 32, 28)
    assert np.mean(out == (labels[plane] > 0)) > 0.85
    assert all(s.region[0].stop - s.region[0].start == 1 for s in session.suggest(2, plane))


def test_class_names_fix_the_number_of_outputs(blobs_2d) -> None:
    image, labels = blobs_2d
    session = InteractiveSession(image[..., None], CFG, PREVIEW, class_names=("bg", "nucleus", "edge"))
    session.update_strokes(_strokes(labels))
    assert session.fit().predict_region().shape == (48, 40, 3)
    with pytest.raises(PixlearnError, match="outside"):
        session.update_strokes(np.full((48, 40), 4, np.uint8))
    with pytest.raises(PixlearnError, match="shape"):
        session.update_strokes(np.zeros((4, 4), np.uint8))
    with pytest.raises(PixlearnError, match="not fitted"):
        InteractiveSession(image[..., None], CFG, PREVIEW).predict_region()


def test_switching_feature_config_regathers_the_strokes(blobs_2d) -> None:
    image, labels = blobs_2d
    strokes = _strokes(labels)
    session = InteractiveSession(image[..., None], CFG, PREVIEW)
    session.update_strokes(strokes)
    small = FeatureConfig(sigmas=(1.0,), features=("gaussian",))
    session.set_feature_config(small)
    assert session._rows.shape == (session.n_labelled, 1)
    assert session.fit().predict_region().shape == (48, 40, 2)


def test_to_pixel_classifier_fits_the_regular_model_on_the_same_strokes(blobs_2d, tmp_path) -> None:
    from pixlearn.models.model_file import load_model, save_model

    image, labels = blobs_2d
    strokes = _strokes(labels)
    session = InteractiveSession(image[..., None], CFG, PREVIEW)
    session.update_strokes(strokes)
    model = session.to_pixel_classifier(("background", "nucleus"))
    assert isinstance(model, PixelClassifier)
    assert model.feature_cfg == CFG and model.class_names == ("background", "nucleus")
    assert model.training["n_labelled_per_class"] == [int((strokes == 1).sum()), int((strokes == 2).sum())]
    predicted = model.predict_labels(image[..., None])
    assert np.mean(predicted == (labels > 0)) > 0.9
    path = save_model(model, tmp_path / "m.zip")
    np.testing.assert_array_equal(load_model(path).predict_labels(image[..., None]), predicted)
