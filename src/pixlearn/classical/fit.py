"""Fitting a pixel classifier from the labelled pixels of images: :func:`fit_pixel_classifier`.

The steps, in order: check the images and targets (:func:`_check_training_data`), name and count
the classes (:func:`_classes`), warn about scales larger than an image (:func:`_warn_about_scales`),
split the memory budget (:func:`_plan`: training pixels per class, :func:`_class_quotas`, and
feature block shapes), pick the training pixels (:func:`_select_pixels`), compute their features
block by block (:func:`_training_set`), subsample for the RBF SVM (:func:`_subsample`), fit
(:func:`_fit_estimator`), and record what was done (:func:`_training_facts`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from pixlearn.classical.budget import training_plan
from pixlearn.classical.config import ClassifierConfig
from pixlearn.classical.estimators import make_estimator, n_threads
from pixlearn.classical.features import FeatureConfig, compute_features_at, feature_halo, n_features
from pixlearn.classical.model import PixelClassifier
from pixlearn.classical.scales import sigma_warnings
from pixlearn.data.blocks import block_grid, block_numbers
from pixlearn.data.labels import IGNORE
from pixlearn.data.memory import default_memory_budget, format_bytes, resident_memory
from pixlearn.data.normalize import NormalizeConfig, compute_normalization, normalized_view
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)

_CHUNK = 2**22  # pixels of a target read at once when counting and choosing training pixels


def _class_quotas(counts: np.ndarray, cap: int | None, total: int | None) -> np.ndarray:
    """Training pixels per class: all labelled, at most `cap` each, and at most `total` in all,
    shared out evenly (a class with fewer pixels than its share leaves the rest to the others).

    Examples
    --------
    >>> _class_quotas(np.array([1000, 500, 30]), 400, 600).tolist()
    [285, 285, 30]
    """
    quota = np.minimum(counts, cap) if cap is not None else counts.copy()
    if total is None or quota.sum() <= total:
        return quota
    lo, hi = 0, int(quota.max())
    while lo < hi:  # the largest level whose clipped quotas fit `total`
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if np.minimum(quota, mid).sum() <= total else (lo, mid - 1)
    return np.minimum(quota, lo)


def _select_pixels(
    targets: list[np.ndarray], quotas: np.ndarray, rng: np.random.Generator, chunk: int = _CHUNK
) -> list[np.ndarray]:
    """Flat indices (sorted) of the training pixels of each image: a uniform random choice of
    ``quotas[k]`` of the pixels of each class ``k`` over all images.

    Targets are read in chunks of `chunk` pixels, so the memory this takes is bounded by the
    chunk and the pixels chosen, never by the pixels labelled.
    """
    cells = [(i, start) for i, t in enumerate(targets) for start in range(0, t.size, chunk)]
    n_classes = len(quotas)
    counts = np.zeros((len(cells), n_classes), np.int64)
    for c, (i, start) in enumerate(cells):
        part = targets[i].reshape(-1)[start:start + chunk]
        counts[c] = np.bincount(part[part >= 0], minlength=n_classes)[:n_classes]
    # how many of each class every chunk gives: a uniform choice over all of them
    take = np.zeros_like(counts)
    for k in range(n_classes):
        if quotas[k] >= counts[:, k].sum():
            take[:, k] = counts[:, k]
        elif quotas[k] > 0:
            take[:, k] = rng.multivariate_hypergeometric(counts[:, k], int(quotas[k]))
    chosen: list[list[np.ndarray]] = [[] for _ in targets]
    for c, (i, start) in enumerate(cells):
        part = targets[i].reshape(-1)[start:start + chunk]
        for cls in np.flatnonzero(take[c]):
            members = np.flatnonzero(part == cls)
            if take[c, cls] < len(members):
                members = rng.choice(members, int(take[c, cls]), replace=False)
            chosen[i].append(members + start)
    return [np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64) for parts in chosen]


def _gather(
    image: Any,
    low: np.ndarray,
    high: np.ndarray,
    selected: np.ndarray,
    feature_cfg: FeatureConfig,
    block_shape: Sequence[int],
    rows: np.ndarray,
) -> None:
    """Features of the selected pixels (flat indices, sorted) of one image into `rows`, block by block."""
    spatial = tuple(image.shape[:-1])
    view = normalized_view(image, low, high)
    if len(selected) == 0:
        return
    coords = np.unravel_index(selected, spatial)
    grid = block_grid(spatial, block_shape)
    number = block_numbers(coords, spatial, block_shape)
    order = np.argsort(number, kind="stable")
    ids, starts = np.unique(number[order], return_index=True)
    bounds = list(starts[1:]) + [len(order)]
    for block_id, lo, hi in zip(ids, starts, bounds):  # only the blocks that hold selected pixels
        core = grid[block_id].core
        members = order[lo:hi]
        local = tuple(c[members] - s.start for c, s in zip(coords, core))
        rows[members] = compute_features_at(view, core, local, feature_cfg).T


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
        flat = t.reshape(-1)
        for start in range(0, flat.size, _CHUNK):  # chunks: no copy of a whole dense mask
            part = flat[start:start + _CHUNK]
            counts += np.bincount(part[part != IGNORE], minlength=n_classes)
    if int((counts > 0).sum()) < 2:
        raise PixlearnError(f"only one class is labelled ({names[int(np.argmax(counts))]}); label at least two")
    return names, counts


def _training_set(
    images: list[Any],
    targets: list[np.ndarray],
    selected: list[np.ndarray],
    feature_cfg: FeatureConfig,
    normalization: NormalizeConfig,
    block_shapes: Sequence[Sequence[int]],
) -> tuple[np.ndarray, np.ndarray]:
    """Features ``(n, F)`` float32 and classes ``(n,)`` int64 of the selected pixels of all images."""
    n_feat = n_features(feature_cfg, images[0].shape[-1], images[0].ndim - 1)
    x = np.empty((sum(len(s) for s in selected), n_feat), np.float32)
    y = np.empty(len(x), np.int64)
    start = 0
    for image, target, sel, blocks in zip(images, targets, selected, block_shapes):
        low, high = compute_normalization(image, normalization)
        _gather(image, low, high, sel, feature_cfg, blocks, x[start:start + len(sel)])
        y[start:start + len(sel)] = target.reshape(-1)[sel]
        start += len(sel)
    return x, y


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
    n_images: int, y: np.ndarray, counts: np.ndarray, n_feat: int, gather_s: float, fit_s: float,
    budget: float, blocks: Sequence[Sequence[int]],
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
        "memory_budget_bytes": int(budget),
        "block_shapes": [list(map(int, b)) for b in blocks],
        "sklearn_version": sklearn.__version__,
    }


def _plan(
    images: list[Any], counts: np.ndarray, feature_cfg: FeatureConfig, clf_cfg: ClassifierConfig,
    budget: float, block_shape: Sequence[int] | None,
) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Training pixels per class and feature block shapes of each image that `budget` allows."""
    ndim, n_channels = images[0].ndim - 1, images[0].shape[-1]
    plan = training_plan(budget, resident_memory(), [im.shape[:-1] for im in images], feature_halo(feature_cfg, ndim),
                         n_features(feature_cfg, n_channels, ndim), len(counts), clf_cfg, n_threads(clf_cfg.n_jobs))
    quotas = _class_quotas(counts, clf_cfg.max_samples_per_class, plan.max_samples)
    wanted = _class_quotas(counts, clf_cfg.max_samples_per_class, None)
    if quotas.sum() < wanted.sum():
        logger.warning("the memory budget of %s allows %d training pixels, fewer than the %d asked for; "
                       "give a larger budget (--memory) for more", format_bytes(budget), int(quotas.sum()),
                       int(wanted.sum()))
    blocks = [tuple(block_shape)] * len(images) if block_shape is not None else list(plan.block_shapes)
    return quotas, blocks


def _warn_about_scales(images: list[Any], feature_cfg: FeatureConfig) -> None:
    """Log each distinct :func:`~pixlearn.classical.scales.sigma_warnings` line of the images once."""
    seen: set[str] = set()
    for image in images:
        for line in sigma_warnings(feature_cfg, image.shape[:-1]):
            if line not in seen:
                seen.add(line)
                logger.warning("%s", line)


def fit_pixel_classifier(
    images: Sequence[Any],
    targets: Sequence[np.ndarray],
    feature_cfg: FeatureConfig | None = None,
    clf_cfg: ClassifierConfig | None = None,
    *,
    normalization: NormalizeConfig | None = None,
    class_names: Sequence[str] | None = None,
    block_shape: Sequence[int] | None = None,
    memory_budget: float | None = None,
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
        Block size for the feature computation (default: from the memory budget).
    memory_budget : float, optional
        Bytes the process may hold at its peak while training (default:
        :func:`pixlearn.data.memory.default_memory_budget`). It bounds the feature blocks and the
        training pixels (:func:`pixlearn.classical.budget.training_plan`), never the images and
        targets themselves, which are held as given; fewer training pixels than
        ``clf_cfg.max_samples_per_class`` allows are taken when the budget says so (a warning).

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
    budget = float(memory_budget) if memory_budget is not None else float(default_memory_budget())
    images, targets = list(images), [np.asarray(t) for t in targets]
    ndim, n_channels = _check_training_data(images, targets)
    names, counts = _classes(targets, class_names)
    _warn_about_scales(images, feature_cfg)

    start = time.perf_counter()
    rng = np.random.default_rng(clf_cfg.seed)
    quotas, blocks = _plan(images, counts, feature_cfg, clf_cfg, budget, block_shape)
    selected = _select_pixels(targets, quotas, rng)
    x, y = _training_set(images, targets, selected, feature_cfg, normalization, blocks)
    del selected
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
        training=_training_facts(len(images), y, counts, x.shape[1], gather_s, fit_s, budget, blocks),
    )
