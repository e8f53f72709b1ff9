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
thin stateful shell over the pure functions of this module; it is not thread-safe (the GUI runs
one update at a time in a worker thread).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from pixlearn.classical.features import (
    FeatureConfig,
    compute_features_block,
    n_features,
)
from pixlearn.classical.fit import fit_pixel_classifier
from pixlearn.classical.predict import compile_forest_or_none, predict_stack
from pixlearn.config import Config
from pixlearn.data.blocks import block_grid
from pixlearn.data.normalize import NormalizeConfig, apply_normalization, compute_normalization
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)

Region = tuple[slice, ...]


def available_cpus() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class PreviewConfig(Config):
    """The small, fast random forest of the live preview and how its data is cut up.

    Parameters
    ----------
    n_estimators : int
        Trees of the preview forest (the saved model uses the regular classifier settings).
    max_depth : int, optional
        Depth limit of each tree; ``None`` grows them until pure (slower to predict).
    min_samples_leaf : int
    max_features : {"sqrt", "log2", "all"}
        Features tried per split.
    max_samples_per_class : int, optional
        Cap of training pixels per class for one refit (a seeded random subsample of the strokes).
    tile_shape : tuple of int
        Feature-cache tile, ``(M, N)`` in 2D; 3D images use ``tile_shape_3d``.
    tile_shape_3d : tuple of int
        Feature-cache tile ``(P, M, N)`` for 3D images.
    suggestion_tile : tuple of int
        Size of a suggested region, ``(M, N)``; in 3D each suggestion is one plane's square.
    n_jobs : int
        Threads for fitting and prediction; ``-1``: every core this process may use.
    seed : int

    Examples
    --------
    >>> PreviewConfig(n_estimators=5).n_estimators
    5
    """

    n_estimators: int = 10
    max_depth: int | None = 14
    min_samples_leaf: int = 1
    max_features: str = "sqrt"
    max_samples_per_class: int | None = 20_000
    tile_shape: tuple[int, ...] = (512, 512)
    tile_shape_3d: tuple[int, ...] = (32, 256, 256)
    suggestion_tile: tuple[int, ...] = (128, 128)
    n_jobs: int = -1
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tile_shape", tuple(int(t) for t in self.tile_shape))
        object.__setattr__(self, "tile_shape_3d", tuple(int(t) for t in self.tile_shape_3d))
        object.__setattr__(self, "suggestion_tile", tuple(int(t) for t in self.suggestion_tile))
        if self.n_estimators < 1:
            raise ValueError(f"PreviewConfig.n_estimators must be >= 1, got {self.n_estimators}")
        if self.max_depth is not None and self.max_depth < 1:
            raise ValueError(f"PreviewConfig.max_depth must be >= 1 or None, got {self.max_depth}")
        if self.min_samples_leaf < 1:
            raise ValueError("PreviewConfig.min_samples_leaf must be >= 1")
        if self.max_features not in ("sqrt", "log2", "all"):
            raise ValueError(f"PreviewConfig.max_features must be sqrt, log2 or all, got {self.max_features!r}")
        if self.max_samples_per_class is not None and self.max_samples_per_class < 1:
            raise ValueError("PreviewConfig.max_samples_per_class must be >= 1 or None")
        for name, size in (("tile_shape", 2), ("tile_shape_3d", 3), ("suggestion_tile", 2)):
            value = getattr(self, name)
            if len(value) != size or any(t < 1 for t in value):
                raise ValueError(f"PreviewConfig.{name} needs {size} positive sizes, got {value}")
        if self.n_jobs == 0 or self.n_jobs < -1:
            raise ValueError(f"PreviewConfig.n_jobs must be -1 or >= 1, got {self.n_jobs}")

    @property
    def threads(self) -> int:
        """`n_jobs` resolved to a number of threads."""
        return available_cpus() if self.n_jobs == -1 else self.n_jobs


# --------------------------------------------------------------------------------------------
# pure functions


def make_preview_forest(cfg: PreviewConfig) -> Any:
    """A fresh (unfitted) scikit-learn random forest for the preview.

    Parameters
    ----------
    cfg : PreviewConfig

    Returns
    -------
    forest : sklearn.ensemble.RandomForestClassifier
        Balanced class weights, seeded.
    """
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=cfg.n_estimators,
        max_depth=cfg.max_depth,
        min_samples_leaf=cfg.min_samples_leaf,
        max_features=None if cfg.max_features == "all" else cfg.max_features,
        class_weight="balanced",
        n_jobs=cfg.threads,
        random_state=cfg.seed,
    )


def margin_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """One minus the margin between the two most probable classes, per pixel.

    Parameters
    ----------
    probabilities : ndarray of shape (..., K)
        Class probabilities, ``K >= 2``.

    Returns
    -------
    uncertainty : ndarray of shape (...), float32
        ``1 - (p_first - p_second)``: 0 where one class is certain, 1 where the top two tie.

    Examples
    --------
    >>> [round(float(u), 3) for u in margin_uncertainty(np.array([[1.0, 0.0], [0.5, 0.5], [0.6, 0.4]]))]
    [0.0, 1.0, 0.8]
    """
    probabilities = np.asarray(probabilities, np.float32)
    if probabilities.ndim < 1 or probabilities.shape[-1] < 2:
        raise ValueError(f"need probabilities of at least 2 classes on the last axis, got shape {probabilities.shape}")
    top2 = np.partition(probabilities, probabilities.shape[-1] - 2, axis=-1)[..., -2:]
    return (np.float32(1.0) - (top2[..., 1] - top2[..., 0])).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Suggestion:
    """A region where new strokes would help most.

    Attributes
    ----------
    region : tuple of slice
        In image coordinates (3D: one plane, ``slice(p, p + 1)`` first).
    score : float
        Mean uncertainty in the region, in [0, 1].
    """

    region: Region
    score: float

    @property
    def corners(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(start, stop)`` corners of :attr:`region`."""
        return tuple(s.start for s in self.region), tuple(s.stop for s in self.region)


def suggest_regions(
    uncertainty: np.ndarray,
    annotated: np.ndarray,
    tile_shape: Sequence[int],
    n: int = 3,
    *,
    origin: Sequence[int] | None = None,
) -> list[Suggestion]:
    """The `n` tiles with the highest mean uncertainty that hold no annotation yet.

    Parameters
    ----------
    uncertainty : ndarray of shape (M, N) or (P, M, N)
        E.g. :func:`margin_uncertainty` of a prediction.
    annotated : ndarray of bool, same shape
        Pixels already labelled; a tile with any is skipped.
    tile_shape : sequence of int
        In-plane tile ``(M, N)``; in 3D tiles are one plane thick.
    n : int
        Most suggestions returned.
    origin : sequence of int, optional
        Image coordinates of ``uncertainty[0, 0]`` when it is a crop; added to the regions.

    Returns
    -------
    suggestions : list of Suggestion
        Best first; tiles cut by the border count when at least half a tile.

    Examples
    --------
    >>> u = np.zeros((4, 4), np.float32); u[2:, 2:] = 1.0
    >>> s = suggest_regions(u, np.zeros((4, 4), bool), (2, 2), n=1)
    >>> s[0].corners, s[0].score
    (((2, 2), (4, 4)), 1.0)
    """
    uncertainty = np.asarray(uncertainty)
    annotated = np.asarray(annotated, bool)
    if uncertainty.shape != annotated.shape or uncertainty.ndim not in (2, 3):
        raise ValueError(f"uncertainty {uncertainty.shape} and annotated {annotated.shape} must be one 2D/3D shape")
    if len(tile_shape) != 2 or any(int(t) < 1 for t in tile_shape):
        raise ValueError(f"tile_shape needs 2 positive sizes, got {tuple(tile_shape)}")
    offset = tuple(origin) if origin is not None else (0,) * uncertainty.ndim
    tile = ((1,) if uncertainty.ndim == 3 else ()) + tuple(int(t) for t in tile_shape)
    full = int(np.prod(tile))
    candidates = []
    for core in (block.core for block in block_grid(uncertainty.shape, tile)):
        size = int(np.prod([s.stop - s.start for s in core]))
        if size * 2 < full and size < uncertainty.size or annotated[core].any():
            continue
        score = float(uncertainty[core].mean())
        region = tuple(slice(s.start + o, s.stop + o) for s, o in zip(core, offset))
        candidates.append(Suggestion(region, score))
    candidates.sort(key=lambda s: -s.score)
    return candidates[: max(0, int(n))]


def scribbles_to_targets(scribbles: np.ndarray) -> np.ndarray:
    """Scribbles (``0`` unlabelled, class ``k`` painted as ``k + 1``) to int64 class targets.

    Examples
    --------
    >>> scribbles_to_targets(np.array([0, 1, 2])).tolist()
    [-1, 0, 1]
    """
    scribbles = np.asarray(scribbles)
    if scribbles.size and scribbles.min() < 0:
        raise ValueError("scribbles must be >= 0 (0 unlabelled, k + 1 for class k)")
    return scribbles.astype(np.int64) - 1


# --------------------------------------------------------------------------------------------
# the feature cache


class _NormalizedView:
    """A canonical image normalised with fixed bounds on whatever region is read."""

    def __init__(self, image: Any, low: np.ndarray, high: np.ndarray) -> None:
        self.image, self.low, self.high = image, low, high
        self.shape = tuple(image.shape)
        self.ndim = len(self.shape)

    def __getitem__(self, region: Any) -> np.ndarray:
        return apply_normalization(np.asarray(self.image[region]), self.low, self.high)


class FeatureCache:
    """Feature stacks of one normalised image, one per tile, computed on first use.

    Parameters
    ----------
    image : array-like of shape (M, N, C) or (P, M, N, C)
        Normalised canonical image (may be lazy).
    cfg : FeatureConfig
    tile_shape : sequence of int
        Spatial tile size.
    max_bytes : int, optional
        Least-recently-used tiles are dropped past this size; ``None``: keep all.
    """

    def __init__(self, image: Any, cfg: FeatureConfig, tile_shape: Sequence[int], *,
                 max_bytes: int | None = None) -> None:
        self.image, self.cfg = image, cfg
        self.spatial = tuple(int(s) for s in image.shape[:-1])
        if len(tile_shape) != len(self.spatial):
            raise ValueError(f"tile_shape {tuple(tile_shape)} does not fit the image's spatial shape {self.spatial}")
        self.tile_shape = tuple(int(t) for t in tile_shape)
        self.n_features = n_features(cfg, int(image.shape[-1]), len(self.spatial))
        self.max_bytes = max_bytes
        self.grid = tuple(-(-n // t) for n, t in zip(self.spatial, self.tile_shape))
        self._tiles: collections.OrderedDict[tuple[int, ...], np.ndarray] = collections.OrderedDict()
        self.seconds = 0.0  # spent computing features

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached stacks."""
        return sum(t.nbytes for t in self._tiles.values())

    def tile_region(self, index: tuple[int, ...]) -> Region:
        """Image region of tile `index`."""
        return tuple(slice(i * t, min((i + 1) * t, n)) for i, t, n in zip(index, self.tile_shape, self.spatial))

    def tiles_of(self, region: Region) -> list[tuple[int, ...]]:
        """Indices of the tiles that `region` overlaps."""
        ranges = [range(s.start // t, -(-s.stop // t)) for s, t in zip(region, self.tile_shape)]
        return list(itertools.product(*ranges))

    def tile(self, index: tuple[int, ...]) -> np.ndarray:
        """Feature-major stack ``(F, ...)`` of tile `index` (computed and cached on first use)."""
        stack = self._tiles.get(index)
        if stack is not None:
            self._tiles.move_to_end(index)
            return stack
        start = time.perf_counter()
        stack = compute_features_block(self.image, self.tile_region(index), self.cfg, feature_axis="first")
        self.seconds += time.perf_counter() - start
        self._tiles[index] = stack
        if self.max_bytes is not None:
            while len(self._tiles) > 1 and self.nbytes > self.max_bytes:
                self._tiles.popitem(last=False)
        return stack

    def gather(self, coords: tuple[np.ndarray, ...]) -> np.ndarray:
        """Features of the pixels at `coords` (one index array per spatial axis), ``(n, F)``."""
        n = len(coords[0]) if coords else 0
        rows = np.empty((n, self.n_features), np.float32)
        if n == 0:
            return rows
        tile_of = tuple(c // t for c, t in zip(coords, self.tile_shape))
        flat = np.ravel_multi_index(tile_of, self.grid)
        order = np.argsort(flat, kind="stable")
        ids, starts = np.unique(flat[order], return_index=True)
        for tid, lo, hi in zip(ids, starts, list(starts[1:]) + [n]):
            index = tuple(int(i) for i in np.unravel_index(tid, self.grid))
            stack = self.tile(index)
            members = order[lo:hi]
            local = tuple(c[members] - i * t for c, i, t in zip(coords, index, self.tile_shape))
            rows[members] = stack[(slice(None),) + local].T
        return rows

    def region(self, region: Region) -> np.ndarray:
        """Feature-major stack ``(F, ...)`` of any region (tiles stitched; a copy)."""
        shape = tuple(s.stop - s.start for s in region)
        out = np.empty((self.n_features,) + shape, np.float32)
        for index in self.tiles_of(region):
            tile = self.tile_region(index)
            inter = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(region, tile))
            if any(s.stop <= s.start for s in inter):
                continue
            src = tuple(slice(s.start - t.start, s.stop - t.start) for s, t in zip(inter, tile))
            dst = tuple(slice(s.start - r.start, s.stop - r.start) for s, r in zip(inter, region))
            out[(slice(None),) + dst] = self.tile(index)[(slice(None),) + src]
        return out


def _check_region(region: Sequence[slice] | None, shape: tuple[int, ...]) -> Region:
    if region is None:
        return tuple(slice(0, n) for n in shape)
    if len(region) != len(shape):
        raise ValueError(f"region of {len(region)} axes for an image of spatial shape {shape}")
    out = []
    for s, n in zip(region, shape):
        start, stop, step = s.indices(n)
        if step != 1 or stop <= start:
            raise ValueError(f"region {tuple(region)} is empty or strided for spatial shape {shape}")
        out.append(slice(start, stop))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# the session


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
        self._view = _NormalizedView(image, self.low, self.high)
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
        box = _check_region(region, self.spatial)
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
        box = _check_region(region, self.spatial)
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
        box = _check_region(region, self.spatial)
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
