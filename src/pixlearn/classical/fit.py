"""Fitting a pixel classifier from the labelled pixels of images: :func:`fit_pixel_classifier`.

The steps, in order: check the images and targets (:func:`_check_training_data`), name and count
the classes (:func:`_classes`), pick the training pixels (:func:`_select_pixels`), compute their
features block by block (:func:`_training_set`), subsample for the RBF SVM (:func:`_subsample`),
fit (:func:`_fit_estimator`), and record what was done (:func:`_training_facts`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from pixlearn.classical.config import ClassifierConfig
from pixlearn.classical.estimators import make_estimator, n_threads
from pixlearn.classical.features import (
    FeatureConfig,
    compute_features_block,
    default_block_shape,
    n_features,
)
from pixlearn.classical.model import PixelClassifier
from pixlearn.data.blocks import block_grid, block_numbers
from pixlearn.data.labels import IGNORE
from pixlearn.data.normalize import NormalizeConfig, compute_normalization, normalized_view
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)


def _select_pixels(
    targets: list[np.ndarray], n_classes: int, cap: int | None, rng: np.random.Generator
) -> list[np.ndarray]:
    """Flat indices of the training pixels per image: labelled, at most `cap` per class."""
    flat = [np.flatnonzero(t.reshape(-1) != IGNORE) for t in targets]
    if cap is None:
        return flat
    image_of = np.concatenate([np.full(len(f), i, np.int64) for i, f in enumerate(flat)])
    index = np.concatenate(flat)
    classes = np.concatenate([t.reshape(-1)[f] for t, f in zip(targets, flat)])
    keep = np.zeros(len(index), bool)
    for k in range(n_classes):
        members = np.flatnonzero(classes == k)
        if len(members) > cap:
            members = rng.choice(members, cap, replace=False)
        keep[members] = True
    return [np.sort(index[keep & (image_of == i)]) for i in range(len(targets))]


def _gather(
    image: Any,
    low: np.ndarray,
    high: np.ndarray,
    selected: np.ndarray,
    feature_cfg: FeatureConfig,
    block_shape: Sequence[int],
) -> np.ndarray:
    """Features of the selected pixels (flat indices, sorted) of one image, block by block."""
    spatial = tuple(image.shape[:-1])
    view = normalized_view(image, low, high)
    n_feat = n_features(feature_cfg, image.shape[-1], len(spatial))
    rows = np.empty((len(selected), n_feat), np.float32)
    if len(selected) == 0:
        return rows
    coords = np.unravel_index(selected, spatial)
    grid = block_grid(spatial, block_shape)
    number = block_numbers(coords, spatial, block_shape)
    order = np.argsort(number, kind="stable")
    ids, starts = np.unique(number[order], return_index=True)
    bounds = list(starts[1:]) + [len(order)]
    for block_id, lo, hi in zip(ids, starts, bounds):  # only the blocks that hold selected pixels
        core = grid[block_id].core
        stack = compute_features_block(view, core, feature_cfg, feature_axis="first")
        members = order[lo:hi]
        local = tuple(c[members] - s.start for c, s in zip(coords, core))
        rows[members] = stack[(slice(None),) + local].T
    return rows


def _stratified(y: np.ndarray, n_max: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a class-stratified random subsample of at most `n_max` of `y`."""
    if len(y) <= n_max:
        return np.arange(len(y))
    keep = []
    classes, counts = np.unique(y, return_counts=True)
    quota = np.maximum(1, np.round(counts / len(y) * n_max).astype(int))
    for k, q in zip(classes, quota):
        members = np.flatnonzero(y == k)
        keep.append(rng.choice(members, min(q, len(members)), replace=False))
    return np.sort(np.concatenate(keep))


def _check_training_data(images: list[Any], targets: list[np.ndarray]) -> tuple[int, int]:
    """Spatial axes and channels shared by all `images`; raise on anything that does not fit."""
    if not images:
        raise PixlearnError("no training images")
    if len(images) != len(targets):
        raise PixlearnError(f"{len(images)} images but {len(targets)} target arrays")
    ndim, n_channels = images[0].ndim - 1, images[0].shape[-1]
    if ndim not in (2, 3):
        raise PixlearnError(f"expected canonical (M, N, C) or (P, M, N, C) images, got shape {tuple(images[0].shape)}")
    for i, (image, target) in enumerate(zip(images, targets)):
        if image.ndim - 1 != ndim or image.shape[-1] != n_channels:
            raise PixlearnError(
                f"image {i} has shape {tuple(image.shape)}; image 0 has {tuple(images[0].shape)} "
                "(all training images need the same dimensionality and channels)"
            )
        if tuple(target.shape) != tuple(image.shape[:-1]):
            raise PixlearnError(f"targets {i} have shape {target.shape}, image {i} has spatial shape {tuple(image.shape[:-1])}")
        if not np.issubdtype(target.dtype, np.integer):
            raise PixlearnError(f"targets {i} must be integers, got {target.dtype}")
        if target.size and int(target.min()) < IGNORE:
            raise PixlearnError(f"targets {i} hold {int(target.min())}: use 0..K-1 and {IGNORE} for unlabelled")
    return ndim, n_channels


def _classes(targets: list[np.ndarray], class_names: Sequence[str] | None) -> tuple[tuple[str, ...], np.ndarray]:
    """Class names and labelled pixels per class; raise unless two classes are labelled."""
    tops = [int(t.max()) for t in targets if t.size and t.max() > IGNORE]
    if not tops:
        raise PixlearnError("no labelled pixels in the targets")
    n_classes = len(class_names) if class_names is not None else max(tops) + 1
    if max(tops) >= n_classes:
        raise PixlearnError(f"target value {max(tops)} is outside the {n_classes} classes")
    names = tuple(class_names) if class_names is not None else tuple(f"class_{k}" for k in range(n_classes))
    counts = np.zeros(n_classes, np.int64)
    for t in targets:
        counts += np.bincount(t[t != IGNORE], minlength=n_classes)
    if int((counts > 0).sum()) < 2:
        raise PixlearnError(f"only one class is labelled ({names[int(np.argmax(counts))]}); label at least two")
    return names, counts


def _training_set(
    images: list[Any],
    targets: list[np.ndarray],
    selected: list[np.ndarray],
    feature_cfg: FeatureConfig,
    normalization: NormalizeConfig,
    block_shape: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Features ``(n, F)`` float32 and classes ``(n,)`` int64 of the selected pixels of all images."""
    rows, labels = [], []
    for image, target, sel in zip(images, targets, selected):
        low, high = compute_normalization(image, normalization)
        rows.append(_gather(image, low, high, sel, feature_cfg, block_shape))
        labels.append(target.reshape(-1)[sel])
    return np.concatenate(rows), np.concatenate(labels).astype(np.int64)


def _subsample(
    x: np.ndarray, y: np.ndarray, clf_cfg: ClassifierConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The pixels the estimator is fitted on: all, or a stratified subsample for the RBF SVM."""
    if clf_cfg.method == "svm" and clf_cfg.svm.kernel == "rbf":
        keep = _stratified(y, clf_cfg.svm.max_samples, rng)
        return x[keep], y[keep]
    return x, y


def _fit_estimator(x: np.ndarray, y: np.ndarray, clf_cfg: ClassifierConfig) -> Any:
    """A fresh estimator for `clf_cfg` fitted on `x`, `y` with at most ``n_jobs`` threads."""
    estimator = make_estimator(clf_cfg)
    with threadpool_limits(limits=n_threads(clf_cfg.n_jobs)):  # OpenMP of gradient boosting
        estimator.fit(x, y)
    return estimator


def _training_facts(
    n_images: int, y: np.ndarray, counts: np.ndarray, n_feat: int, gather_s: float, fit_s: float
) -> dict[str, Any]:
    """JSON-safe facts about the fit, kept in the model file."""
    import sklearn

    return {
        "n_images": n_images,
        "n_pixels": len(y),
        "n_pixels_per_class": [int(c) for c in np.bincount(y, minlength=len(counts))],
        "n_labelled_per_class": [int(c) for c in counts],
        "n_features": int(n_feat),
        "gather_seconds": round(gather_s, 3),
        "fit_seconds": round(fit_s, 3),
        "sklearn_version": sklearn.__version__,
    }


def fit_pixel_classifier(
    images: Sequence[Any],
    targets: Sequence[np.ndarray],
    feature_cfg: FeatureConfig | None = None,
    clf_cfg: ClassifierConfig | None = None,
    *,
    normalization: NormalizeConfig | None = None,
    class_names: Sequence[str] | None = None,
    block_shape: Sequence[int] | None = None,
) -> PixelClassifier:
    """Fit a pixel classifier on one or more images with sparse or dense class targets.

    Parameters
    ----------
    images : sequence of array-like of shape (M, N, C) or (P, M, N, C)
        Raw canonical images (may be lazy); each is normalised with `normalization`.
    targets : sequence of ndarray of shape (M, N) or (P, M, N), int
        Classes ``0..K-1`` and :data:`pixlearn.data.labels.IGNORE` (-1) for unlabelled pixels.
    feature_cfg : FeatureConfig, optional
    clf_cfg : ClassifierConfig, optional
    normalization : NormalizeConfig, optional
        Default: percentile normalisation.
    class_names : sequence of str, optional
        ``K`` names; default ``"class_0".."class_{K-1}"`` with ``K`` = largest target + 1.
    block_shape : sequence of int, optional
        Block size for the feature computation.

    Returns
    -------
    model : PixelClassifier

    Raises
    ------
    PixlearnError
        No images, mismatched counts or shapes, mixed dimensionality or channel counts, target
        values outside the classes, no labelled pixels, or a single labelled class.

    Examples
    --------
    >>> from pixlearn.classical.config import ForestConfig
    >>> image = np.zeros((16, 16, 1), np.float32); image[4:12, 4:12] = 1
    >>> targets = np.full((16, 16), -1); targets[0, :] = 0; targets[8, 6:10] = 1
    >>> model = fit_pixel_classifier([image], [targets], FeatureConfig(sigmas=(1.0,)),
    ...                              ClassifierConfig(rf=ForestConfig(n_estimators=5)))
    >>> model.predict_labels(image)[8, 8]
    np.uint8(1)
    """
    feature_cfg = feature_cfg or FeatureConfig()
    clf_cfg = clf_cfg or ClassifierConfig()
    normalization = normalization or NormalizeConfig()
    images, targets = list(images), [np.asarray(t) for t in targets]
    ndim, n_channels = _check_training_data(images, targets)
    names, counts = _classes(targets, class_names)

    start = time.perf_counter()
    rng = np.random.default_rng(clf_cfg.seed)
    selected = _select_pixels(targets, len(names), clf_cfg.max_samples_per_class, rng)
    blocks = tuple(block_shape) if block_shape is not None else default_block_shape(ndim)
    x, y = _training_set(images, targets, selected, feature_cfg, normalization, blocks)
    gather_s = time.perf_counter() - start
    x, y = _subsample(x, y, clf_cfg, rng)
    estimator = _fit_estimator(x, y, clf_cfg)
    fit_s = time.perf_counter() - start - gather_s
    logger.info("fitted %s on %d pixels x %d features in %.2f s", clf_cfg.method, len(y), x.shape[1], fit_s)
    return PixelClassifier(
        estimator=estimator,
        feature_cfg=feature_cfg,
        clf_cfg=clf_cfg,
        normalization=normalization,
        class_names=names,
        ndim=ndim,
        n_channels=n_channels,
        training=_training_facts(len(images), y, counts, x.shape[1], gather_s, fit_s),
    )
