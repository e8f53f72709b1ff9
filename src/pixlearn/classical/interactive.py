"""Interactive pixel classification: a live random-forest preview while the user paints.

The work of one round (a stroke was painted, show the updated classifier) is split so that
nothing is done twice:

* the image is normalised once (:func:`pixlearn.data.normalize.compute_normalization`);
* its filter-bank features are computed once per tile and cached (:class:`FeatureCache`), only for
  the tiles that strokes touch or that a view asks for;
* a new stroke adds only the features of its own new pixels to the training rows
  (:meth:`InteractiveSession.update_strokes` compares the scribbles with the last ones);
* a small random forest (:class:`PreviewConfig`: few, shallow trees) is refitted on those rows
  and predicts only the region on screen (:meth:`InteractiveSession.predict_region`).

Uncertainty is the margin between the two most probable classes (:func:`margin_uncertainty`);
:func:`suggest_regions` ranks tiles by their mean uncertainty and skips tiles already annotated.
When the user is happy, :meth:`InteractiveSession.to_pixel_classifier` fits the regular,
saveable :class:`~pixlearn.classical.model.PixelClassifier` on the same strokes with
:func:`~pixlearn.classical.fit.fit_pixel_classifier`.

Everything here is NumPy and scikit-learn: no torch, no Qt. :class:`InteractiveSession` is a
thin stateful shell over pure functions: uncertainty, suggestions and scribble targets live in
:mod:`pixlearn.classical.annotation`, the feature cache in :mod:`pixlearn.classical.feature_cache`,
the preview forest's settings in :mod:`pixlearn.classical.preview`; their public names are
importable from here too. The session is not thread-safe (the GUI runs one update at a time in a
worker thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from pixlearn.classical.annotation import (
    Suggestion,
    check_region,
    margin_uncertainty,
    scribbles_to_targets,
    suggest_regions,
)
from pixlearn.classical.feature_cache import FeatureCache, NormalizedView
from pixlearn.classical.features import FeatureConfig
from pixlearn.classical.fit import fit_pixel_classifier
from pixlearn.classical.predict import compile_forest_or_none, predict_stack
from pixlearn.classical.preview import PreviewConfig, available_cpus, make_preview_forest
from pixlearn.data.normalize import NormalizeConfig, compute_normalization
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)


class InteractiveSession:
    """One image being annotated: cached features, the strokes so far, the preview forest.

    Parameters
    ----------
    image : array-like of shape (M, N, C) or (P, M, N, C)
        Raw canonical image (any dtype; may be lazy). Normalised once with `normalization`.
    feature_cfg : FeatureConfig, optional
        Default: the ilastik filter bank.
    preview_cfg : PreviewConfig, optional
    normalization : NormalizeConfig, optional
        Default percentile normalisation (as :func:`fit_pixel_classifier`'s default).
    class_names : sequence of str, optional
        Fixes the number of classes ``K``; default: the largest painted class.
    max_cache_bytes : int, optional
        Bound on the cached features (least recently used tiles dropped).

    Examples
    --------
    >>> image = np.zeros((32, 32, 1), np.float32); image[8:24, 8:24] = 1
    >>> strokes = np.zeros((32, 32), np.uint8); strokes[2, :] = 1; strokes[16, 12:20] = 2
    >>> session = InteractiveSession(image, FeatureConfig(sigmas=(1.0, 2.0)), PreviewConfig(n_estimators=3))
    >>> session.update_strokes(strokes)
    40
    >>> probabilities = session.fit().predict_region((slice(0, 32), slice(0, 32)))
    >>> probabilities.shape, int(probabilities[16, 16].argmax())
    ((32, 32, 2), 1)
    """

    def __init__(
        self,
        image: Any,
        feature_cfg: FeatureConfig | None = None,
        preview_cfg: PreviewConfig | None = None,
        *,
        normalization: NormalizeConfig | None = None,
        class_names: Sequence[str] | None = None,
        max_cache_bytes: int | None = None,
    ) -> None:
        if image.ndim not in (3, 4):
            raise PixlearnError(f"expected a canonical image (M, N, C) or (P, M, N, C), got shape {tuple(image.shape)}")
        self.image = image
        self.preview_cfg = preview_cfg or PreviewConfig()
        self.normalization = normalization or NormalizeConfig()
        self.class_names = tuple(class_names) if class_names is not None else None
        self.spatial = tuple(int(s) for s in image.shape[:-1])
        self.ndim = len(self.spatial)
        self.low, self.high = compute_normalization(image, self.normalization)
        self._view = NormalizedView(image, self.low, self.high)
        self._max_cache_bytes = max_cache_bytes
        self._caches: dict[FeatureConfig, FeatureCache] = {}
        self.feature_cfg = feature_cfg or FeatureConfig()
        # the strokes: painted pixels (flat indices, sorted), their classes, their features
        self._scribbles = np.zeros(self.spatial, np.int64)
        self._index = np.empty(0, np.int64)
        self._classes = np.empty(0, np.int64)
        self._rows = np.empty((0, self.cache.n_features), np.float32)
        self.estimator: Any | None = None
        self._compiled: Any | None = None
        self.timings: dict[str, float] = {}

    # ---------------------------------------------------------------- features

    @property
    def cache(self) -> FeatureCache:
        """The feature cache of the current :attr:`feature_cfg` (made on first use)."""
        cache = self._caches.get(self.feature_cfg)
        if cache is None:
            tile = self.preview_cfg.tile_shape if self.ndim == 2 else self.preview_cfg.tile_shape_3d
            cache = FeatureCache(self._view, self.feature_cfg, tile, max_bytes=self._max_cache_bytes)
            self._caches[self.feature_cfg] = cache
        return cache

    def set_feature_config(self, cfg: FeatureConfig) -> None:
        """Switch filter banks: the strokes' features are gathered again (from the cache of `cfg`)."""
        if cfg == self.feature_cfg:
            return
        self.feature_cfg = cfg
        self._rows = self.cache.gather(np.unravel_index(self._index, self.spatial))
        self.estimator = self._compiled = None

    # ---------------------------------------------------------------- strokes

    @property
    def n_labelled(self) -> int:
        """Painted pixels."""
        return len(self._index)

    @property
    def scribbles(self) -> np.ndarray:
        """The strokes as last given (``0`` unlabelled, class ``k`` as ``k + 1``); a copy."""
        return self._scribbles.copy()

    @property
    def n_classes(self) -> int:
        """``K``: the length of :attr:`class_names`, else the largest painted class + 1 (at least 2)."""
        if self.class_names is not None:
            return len(self.class_names)
        return max(2, int(self._classes.max(initial=0)) + 1)

    def update_strokes(self, scribbles: np.ndarray, region: Sequence[slice] | None = None) -> int:
        """Take the current scribbles; only pixels that changed since the last call are processed.

        Parameters
        ----------
        scribbles : ndarray of shape (M, N) or (P, M, N), integer
            ``0`` unlabelled, class ``k`` painted as ``k + 1`` (napari Labels convention).
        region : tuple of slice, optional
            Where the changes are (e.g. the bounding box of a stroke); ``None``: anywhere.

        Returns
        -------
        n_changed : int
            Pixels added, removed or changed class.
        """
        scribbles = np.asarray(scribbles)
        if tuple(scribbles.shape) != self.spatial:
            raise PixlearnError(f"scribbles of shape {scribbles.shape} for an image of spatial shape {self.spatial}")
        if not np.issubdtype(scribbles.dtype, np.integer):
            raise PixlearnError(f"scribbles must be integers, got {scribbles.dtype}")
        box = check_region(region, self.spatial)
        new = scribbles[box].astype(np.int64)
        if new.size and new.min() < 0:
            raise PixlearnError("scribbles must be >= 0 (0 unlabelled, k + 1 for class k)")
        if self.class_names is not None and new.size and new.max() > len(self.class_names):
            raise PixlearnError(f"scribble value {int(new.max())} is outside the {len(self.class_names)} classes")
        changed = np.nonzero(new != self._scribbles[box])
        if not len(changed[0]):
            return 0
        coords = tuple(c + s.start for c, s in zip(changed, box))
        flat = np.ravel_multi_index(coords, self.spatial)
        values = new[changed]
        self._scribbles[box] = new
        keep = ~np.isin(self._index, flat, assume_unique=True)
        painted = values > 0
        add_coords = tuple(c[painted] for c in coords)
        add_rows = self.cache.gather(add_coords)
        index = np.concatenate([self._index[keep], flat[painted]])
        order = np.argsort(index, kind="stable")
        self._index = index[order]
        self._classes = np.concatenate([self._classes[keep], values[painted] - 1])[order]
        self._rows = np.concatenate([self._rows[keep], add_rows])[order]
        return int(len(flat))

    def targets(self) -> np.ndarray:
        """Class targets of the whole image: ``0..K-1`` painted, ``-1`` (:data:`pixlearn.data.labels.IGNORE`) elsewhere."""
        return scribbles_to_targets(self._scribbles)

    # ---------------------------------------------------------------- fit and predict

    def _training_rows(self) -> tuple[np.ndarray, np.ndarray]:
        cap = self.preview_cfg.max_samples_per_class
        if cap is None:
            return self._rows, self._classes
        rng = np.random.default_rng(self.preview_cfg.seed)
        keep = []
        for k in np.unique(self._classes):
            members = np.flatnonzero(self._classes == k)
            if len(members) > cap:
                members = np.sort(rng.choice(members, cap, replace=False))
            keep.append(members)
        chosen = np.sort(np.concatenate(keep)) if keep else np.empty(0, np.int64)
        return self._rows[chosen], self._classes[chosen]

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has run on the current strokes' features."""
        return self.estimator is not None

    def fit(self) -> InteractiveSession:
        """Refit the preview forest on all strokes so far.

        Returns
        -------
        self : InteractiveSession

        Raises
        ------
        PixlearnError
            Fewer than two classes painted.
        """
        present = np.unique(self._classes)
        if len(present) < 2:
            raise PixlearnError("paint at least two classes for a preview")
        start = time.perf_counter()
        x, y = self._training_rows()
        forest = make_preview_forest(self.preview_cfg)
        forest.fit(x, y)
        self.estimator = forest
        self._compiled = compile_forest_or_none(forest)
        self.timings["fit_s"] = time.perf_counter() - start
        logger.debug("preview forest fitted on %d pixels in %.3f s", len(y), self.timings["fit_s"])
        return self

    def predict_region(self, region: Sequence[slice] | None = None) -> np.ndarray:
        """Class probabilities of one region only (e.g. the view on screen).

        Parameters
        ----------
        region : tuple of slice, optional
            Spatial region; ``None``: the whole image.

        Returns
        -------
        probabilities : ndarray of shape region_shape + (K,), float32

        Raises
        ------
        PixlearnError
            Before :meth:`fit`.
        """
        if self.estimator is None:
            raise PixlearnError("the preview is not fitted yet: paint two classes and call fit()")
        box = check_region(region, self.spatial)
        start = time.perf_counter()
        stack = self.cache.region(box)
        features_s = time.perf_counter() - start
        probabilities = predict_stack(self.estimator, stack, self.n_classes, n_jobs=self.preview_cfg.threads,
                                      compiled=self._compiled)
        self.timings["region_features_s"] = features_s
        self.timings["predict_s"] = time.perf_counter() - start - features_s
        return probabilities

    def preview(self, region: Sequence[slice] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Labels and uncertainty of a region, from the fitted forest.

        Returns
        -------
        labels : ndarray of shape region_shape, uint8
            Most probable class (``0..K-1``).
        uncertainty : ndarray of shape region_shape, float32
            :func:`margin_uncertainty`.
        """
        probabilities = self.predict_region(region)
        return np.argmax(probabilities, axis=-1).astype(np.uint8), margin_uncertainty(probabilities)

    def suggest(self, n: int = 3, region: Sequence[slice] | None = None) -> list[Suggestion]:
        """Regions (tiles of ``preview_cfg.suggestion_tile``) where new strokes would help most.

        Parameters
        ----------
        n : int
        region : tuple of slice, optional
            Where to look (e.g. the view, or one plane of a 3D image); ``None``: the whole image.

        Returns
        -------
        suggestions : list of Suggestion
            Highest mean uncertainty first, none overlapping a stroke.
        """
        box = check_region(region, self.spatial)
        uncertainty = margin_uncertainty(self.predict_region(box))
        annotated = self._scribbles[box] > 0
        return suggest_regions(uncertainty, annotated, self.preview_cfg.suggestion_tile, n,
                               origin=[s.start for s in box])

    def step(self, scribbles: np.ndarray, region: Sequence[slice] | None = None,
             changed: Sequence[slice] | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """One round of the live loop: take the strokes, refit when they changed, predict `region`.

        Parameters
        ----------
        scribbles : ndarray
            As :meth:`update_strokes`.
        region : tuple of slice, optional
            Region to predict (the view); ``None``: the whole image.
        changed : tuple of slice, optional
            Where the strokes changed (passed to :meth:`update_strokes`).

        Returns
        -------
        (labels, uncertainty) or None
            As :meth:`preview`; ``None`` while fewer than two classes are painted.
        """
        start = time.perf_counter()
        n_changed = self.update_strokes(scribbles, changed)
        self.timings["strokes_s"] = time.perf_counter() - start
        if len(np.unique(self._classes)) < 2:
            self.estimator = self._compiled = None
            return None
        if n_changed or self.estimator is None:  # a new view of the same strokes: predict only
            self.fit()
        result = self.preview(region)
        self.timings["step_s"] = time.perf_counter() - start
        return result

    def to_pixel_classifier(self, class_names: Sequence[str] | None = None) -> Any:
        """Fit the regular, saveable classifier on the same strokes and features.

        Uses :func:`~pixlearn.classical.fit.fit_pixel_classifier` with the default classifier
        configuration, this session's :attr:`feature_cfg` and normalisation.

        Parameters
        ----------
        class_names : sequence of str, optional
            Default: :attr:`class_names`, else ``class_0..``.

        Returns
        -------
        model : PixelClassifier
        """
        names = class_names if class_names is not None else self.class_names
        if names is not None and len(names) < int(self._classes.max(initial=0)) + 1:
            raise PixlearnError(f"{len(names)} class names for {int(self._classes.max()) + 1} painted classes")
        return fit_pixel_classifier([self.image], [self.targets()], self.feature_cfg,
                                    normalization=self.normalization, class_names=names)


__all__ = [
    "FeatureCache",
    "InteractiveSession",
    "PreviewConfig",
    "Suggestion",
    "available_cpus",
    "make_preview_forest",
    "margin_uncertainty",
    "scribbles_to_targets",
    "suggest_regions",
]
