"""Classical pixel classifiers: learning synthetic blobs, exact block-wise prediction, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from pixlearn.classical.config import BoostingConfig, ClassifierConfig, ForestConfig, SVMConfig
from pixlearn.classical.features import FeatureConfig, compute_features_block
from pixlearn.classical.fit import fit_pixel_classifier
from pixlearn.classical.model import PixelClassifier
from pixlearn.classical.predict import ScratchStack, predict_stack
from pixlearn.data.blocks import pad_block
from pixlearn.data.labels import IGNORE
from pixlearn.data.normalize import (
    NormalizeConfig,
    apply_normalization,
    compute_normalization,
)
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import PixelModel

SMALL = FeatureConfig(sigmas=(0.7, 1.6, 3.5))
FAST = {
    "rf": ClassifierConfig(rf=ForestConfig(n_estimators=10), seed=1, n_jobs=1),
    "svm-linear": ClassifierConfig(method="svm", svm=SVMConfig(kernel="linear"), seed=1, n_jobs=1),
    "svm-rbf": ClassifierConfig(method="svm", svm=SVMConfig(kernel="rbf", max_samples=300), seed=1, n_jobs=1),
    # one thread: OpenMP spin-waiting makes tiny fits slow on a busy machine; no class weights:
    # scikit-learn 1.9 bins weighted samples with ~1 ms per threshold (seconds per fit)
    "hgb": ClassifierConfig(
        method="hgb", hgb=BoostingConfig(max_iter=20, learning_rate=0.3), class_weight=None, seed=1, n_jobs=1
    ),
}
# IoU each method reaches on blobs_2d from ~15% scribbles (measured: rf 0.99, svm-linear 0.91,
# svm-rbf 0.86 on a 300-pixel subsample, hgb 0.79 with scikit-learn's min_samples_leaf=20 on
# ~240 pixels), with a margin
MIN_IOU = {"rf": 0.9, "svm-linear": 0.85, "svm-rbf": 0.8, "hgb": 0.75}


def _scribbles(labels, fraction=0.15, seed=0):
    """Sparse targets: random pixels of eroded objects (1) and of the far background (0)."""
    rng = np.random.default_rng(seed)
    foreground = labels > 0
    inside = ndi.binary_erosion(foreground, iterations=1)
    outside = ~ndi.binary_dilation(foreground, iterations=1)
    targets = np.full(labels.shape, IGNORE, np.int64)
    pick = rng.random(labels.shape) < fraction
    targets[inside & pick] = 1
    targets[outside & pick] = 0
    return targets


def _iou(pred, truth):
    return (pred & truth).sum() / (pred | truth).sum()


def _normalised(model, image):
    low, high = compute_normalization(image, model.normalization)
    return apply_normalization(image, low, high)


@pytest.mark.parametrize("method", sorted(FAST))
def test_learns_blobs_2d(blobs_2d, method):
    image, labels = blobs_2d
    targets = _scribbles(labels)
    assert (targets != IGNORE).mean() < 0.2
    model = fit_pixel_classifier([image[..., None]], [targets], SMALL, FAST[method])
    pred = model.predict_labels(image[..., None])
    assert pred.shape == labels.shape and pred.dtype == np.uint8
    assert _iou(pred == 1, labels > 0) > MIN_IOU[method]
    probabilities = model.predict_probabilities(image[..., None])
    assert probabilities.dtype == np.float32 and probabilities.shape == labels.shape + (2,)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.argmax(probabilities, -1), pred)


def test_learns_blobs_3d_from_several_images(blobs_3d):
    image, labels = blobs_3d
    targets = _scribbles(labels, fraction=0.1, seed=1)
    halves = [image[:5, ..., None], image[5:, ..., None]]
    model = fit_pixel_classifier(
        halves, [targets[:5], targets[5:]], FeatureConfig(sigmas=(0.7, 1.6)), FAST["rf"],
        class_names=["background", "ball"],
    )
    assert model.ndim == 3 and model.class_names == ("background", "ball")
    assert model.training["n_images"] == 2
    assert model.training["n_pixels"] == int((targets != IGNORE).sum())
    pred = model.predict_labels(image[..., None])
    assert _iou(pred == 1, labels > 0) > 0.8


def test_multichannel_uses_the_informative_channel(blobs_2d):
    image, labels = blobs_2d
    rng = np.random.default_rng(3)
    noise = rng.random(image.shape).astype(np.float32)
    two = np.stack([noise, image], axis=-1)
    model = fit_pixel_classifier([two], [_scribbles(labels)], SMALL, FAST["rf"])
    assert model.n_channels == 2 and model.n_features == 2 * 24
    assert _iou(model.predict_labels(two) == 1, labels > 0) > 0.85
    with pytest.raises(PixlearnError, match="channel"):
        model.predict_labels(image[..., None])


def test_forest_prediction_equals_sklearn(blobs_2d):
    image, labels = blobs_2d
    model = fit_pixel_classifier([image[..., None]], [_scribbles(labels)], SMALL, FAST["rf"])
    full = tuple(slice(0, n) for n in image.shape)
    stack = compute_features_block(_normalised(model, image[..., None]), full, SMALL, feature_axis="first")
    ours = predict_stack(model.estimator, stack, 2, n_jobs=2)
    ref = model.estimator.predict_proba(np.moveaxis(stack, 0, -1).reshape(-1, stack.shape[0]))
    # float32 sums of 10 leaf fractions vs sklearn's float64
    np.testing.assert_allclose(ours.reshape(-1, 2), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("fixture", ["blobs_2d", "blobs_3d"])
def test_blockwise_prediction_equals_whole_image(fixture, request):
    image, labels = request.getfixturevalue(fixture)
    image = image[..., None]
    cfg = FeatureConfig(sigmas=(0.7, 1.6))
    model = fit_pixel_classifier([image], [_scribbles(labels)], cfg, FAST["rf"])
    assert isinstance(model, PixelModel)
    norm = _normalised(model, image)
    whole = model.predict_raw(norm)
    # a tile padded by the halo, as the tiled engine does it
    core = tuple(slice(n // 4, n // 4 + max(3, n // 3)) for n in image.shape[:-1])
    padded, inner = pad_block(core, image.shape[:-1], model.halo)
    np.testing.assert_array_equal(model.predict_raw(norm[padded])[inner], whole[core])
    # the core alone from the same padded tile (what exact tiles run), batched
    cores = model.predict_core(np.stack([norm[padded]] * 2), inner)
    assert cores.shape == (2,) + whole[core].shape
    np.testing.assert_array_equal(cores[1], whole[core])
    # at the image's border the tile ends where the image does: the features reflect there too
    corner = tuple(slice(0, max(3, n // 3)) for n in image.shape[:-1])
    padded, inner = pad_block(corner, image.shape[:-1], model.halo)
    np.testing.assert_array_equal(model.predict_core(norm[padded][None], inner)[0], whole[corner])
    # block-wise convenience path with tiny blocks
    blocks = tuple(max(2, n // 3) for n in image.shape[:-1])
    np.testing.assert_array_equal(model.predict_probabilities(image, block_shape=blocks), whole)
    out = np.full(image.shape[:-1], 7, np.uint16)
    assert model.predict_labels(image, out=out, block_shape=blocks) is out
    np.testing.assert_array_equal(out, np.argmax(whole, -1))


def test_dense_masks_are_subsampled_per_class(blobs_2d):
    image, labels = blobs_2d
    dense = (labels > 0).astype(np.int64)
    cfg = FAST["rf"].replace(max_samples_per_class=100)
    model = fit_pixel_classifier([image[..., None]] * 2, [dense, dense], SMALL, cfg)
    assert model.training["n_pixels_per_class"] == [100, 100]
    assert model.training["n_labelled_per_class"] == [int((dense == 0).sum()) * 2, int(dense.sum()) * 2]
    assert _iou(model.predict_labels(image[..., None]) == 1, labels > 0) > 0.85


def test_unlabelled_class_gets_zero_probability(blobs_2d):
    image, labels = blobs_2d
    model = fit_pixel_classifier(
        [image[..., None]], [_scribbles(labels)], SMALL, FAST["rf"], class_names=["bg", "fg", "other"]
    )
    probabilities = model.predict_probabilities(image[..., None])
    assert probabilities.shape[-1] == 3 and model.n_outputs == 3
    assert (probabilities[..., 2] == 0).all()


def test_metadata_round_trip(blobs_2d):
    image, labels = blobs_2d
    model = fit_pixel_classifier(
        [image[..., None]], [_scribbles(labels)], SMALL, FAST["hgb"],
        normalization=NormalizeConfig(pmin=2.0, pmax=98.0),
    )
    meta = json.loads(json.dumps(model.to_metadata()))
    assert meta["kind"] == "classical" and meta["task"] == "semantic" and meta["halo"] == list(model.halo)
    again = PixelClassifier.from_metadata(meta, model.estimator)
    assert again.feature_cfg == SMALL and again.normalization == model.normalization
    assert again.clf_cfg == model.clf_cfg and again.class_names == model.class_names
    np.testing.assert_array_equal(again.predict_probabilities(image[..., None]), model.predict_probabilities(image[..., None]))
    with pytest.raises(PixlearnError, match="features"):
        PixelClassifier.from_metadata({**meta, "features": FeatureConfig(sigmas=(1.0,)).to_dict()}, model.estimator)
    with pytest.raises(PixlearnError, match="metadata"):
        PixelClassifier.from_metadata({"kind": "classical"}, model.estimator)


def test_bad_training_inputs(blobs_2d):
    image, labels = blobs_2d
    image = image[..., None]
    targets = _scribbles(labels)
    cfg = FAST["rf"]
    cases = [
        ([image], [np.full(labels.shape, IGNORE)], "no labelled"),
        ([image], [np.where(targets == 1, 1, IGNORE)], "only one class"),
        ([image], [targets[:-1]], "shape"),
        ([image, image[..., [0, 0]]], [targets, targets], "channels"),
        ([image], [targets, targets], "target arrays"),
        ([], [], "no training images"),
        ([image], [targets.astype(float)], "integers"),
        ([image], [targets - 2], "unlabelled"),
    ]
    for images, target_list, match in cases:
        with pytest.raises(PixlearnError, match=match):
            fit_pixel_classifier(images, target_list, SMALL, cfg)
    with pytest.raises(PixlearnError, match="outside"):
        fit_pixel_classifier([image], [targets], SMALL, cfg, class_names=["only"])


def test_bad_prediction_inputs(blobs_2d):
    image, labels = blobs_2d
    model = fit_pixel_classifier([image[..., None]], [_scribbles(labels)], SMALL, FAST["rf"])
    with pytest.raises(PixlearnError, match="2D"):
        model.predict_labels(np.zeros((4, 8, 8, 1), np.float32))
    with pytest.raises(PixlearnError, match="out has shape"):
        model.predict_probabilities(image[..., None], out=np.zeros((3, 3, 2), np.float32))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: ClassifierConfig(method="knn"), "method"),
        (lambda: ForestConfig(n_estimators=0), "n_estimators"),
        (lambda: ForestConfig(max_features="half"), "max_features"),
        (lambda: SVMConfig(kernel="poly"), "svm.kernel"),
        (lambda: ClassifierConfig(class_weight="auto"), "class_weight"),
        (lambda: ClassifierConfig(n_jobs=0), "n_jobs"),
    ],
)
def test_config_validation(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_config_round_trip():
    cfg = ClassifierConfig(method="hgb", rf=ForestConfig(max_depth=12), class_weight=None, max_samples_per_class=None)
    assert ClassifierConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("n_classes", [2, 3])
def test_forest_labels_stop_early_exactly(blobs_2d, n_classes):
    image, labels = blobs_2d
    targets = _scribbles(labels)
    if n_classes == 3:  # odd-numbered discs become class 2
        targets[(targets == 1) & (labels % 2 == 1)] = 2
    cfg = ClassifierConfig(rf=ForestConfig(n_estimators=40), seed=2, n_jobs=1)
    model = fit_pixel_classifier([image[..., None]], [targets], SMALL, cfg)
    full = tuple(slice(0, n) for n in image.shape)
    stack = compute_features_block(_normalised(model, image[..., None]), full, SMALL, feature_axis="first")
    votes = predict_stack(model.estimator, stack, n_classes)
    fast = predict_stack(model.estimator, stack, n_classes, labels=True)
    np.testing.assert_array_equal(fast, np.argmax(votes, -1))
    np.testing.assert_array_equal(model.predict_labels(image[..., None]), fast)


def test_scratch_stack_is_writable_grows_and_lends_a_fresh_array_when_busy():
    scratch = ScratchStack()
    with scratch.lend((2, 3)) as a:
        a[:] = 7.0
        assert a.flags.writeable and a.dtype == np.float32
        with scratch.lend((2, 3)) as busy:  # lent out: a fresh array, not the same memory
            assert not np.shares_memory(a, busy)
    with scratch.lend((4, 5)) as b:  # grown
        b[:] = np.arange(20, dtype=np.float32).reshape(4, 5)
        np.testing.assert_array_equal(b.sum(), 190.0)
    with scratch.lend((0, 3)) as empty:
        assert empty.shape == (0, 3)
    scratch.release()
