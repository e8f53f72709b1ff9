"""Classical pixel classifiers: filter-bank features + random forest, SVM or gradient boosting.

:func:`fit_pixel_classifier` gathers the features of labelled pixels only (block by block, so
sparse scribbles on big images never need a whole feature stack) and fits a scikit-learn
estimator; :class:`PixelClassifier` holds it with the feature, classifier and normalisation
settings and predicts probability and label maps block by block with bounded memory.

Random-forest prediction uses :mod:`pixlearn.forest` (numba kernels over a compact copy of the
trees, rebuilt from the estimator and cached on the :class:`PixelClassifier`); without numba it
walks the scikit-learn trees (``Tree.apply``, which releases the GIL) over cache-sized chunks of
pixels in a few threads. Either way it averages the leaf class fractions: the same numbers as
``RandomForestClassifier.predict_proba`` (summed in float32). Label maps stop early: a pixel
whose lead over the runner-up class exceeds the number of trees left cannot change class, so it
skips them (exact; most pixels of a confident model).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from .config import Config
from .errors import PixlearnError
from .features import (
    FeatureConfig,
    compute_features_block,
    default_block_shape,
    feature_halo,
    iter_blocks,
    n_features,
)
from .labels import IGNORE
from .normalize import NormalizeConfig, apply_normalization, compute_normalization

logger = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("rf", "svm", "hgb")
_CHUNK = 8192  # pixels per prediction step: features of a chunk stay in cache


@dataclasses.dataclass(frozen=True)
class ClassifierConfig(Config):
    """Which classifier and how to train it.

    Parameters
    ----------
    method : {"rf", "svm", "hgb"}
        Random forest, support-vector machine, or histogram gradient boosting.
    n_estimators, max_depth, min_samples_leaf, max_features
        Random forest: trees, depth limit (``None``: grow until pure), smallest leaf, and
        features tried per split (``"sqrt"``, ``"log2"`` or ``"all"``).
    svm_kernel : {"rbf", "linear"}
        ``"rbf"``: kernel SVM (``SVC``) fitted on a stratified subsample of at most
        `svm_max_samples` pixels; ``"linear"``: ``LinearSVC`` on all gathered pixels. Both
        standardise the features first and give sigmoid-calibrated (Platt) probabilities.
    svm_c : float
        Regularisation strength ``C``.
    svm_max_samples : int
        Pixel cap for the RBF SVM.
    hgb_max_iter, hgb_learning_rate, hgb_max_leaf_nodes
        Gradient boosting: boosting rounds, step size, leaves per tree.
    class_weight : {"balanced", None}
        ``"balanced"`` weights classes inversely to their pixel counts.
    max_samples_per_class : int, optional
        Cap of training pixels per class (stratified random subsample, for dense masks).
    n_jobs : int
        Threads for fitting and prediction (``-1``: all cores; OpenMP and BLAS pools are
        limited to it too). Does not change results.
    seed : int
        Seed of every random choice (subsampling, bootstrap, SVM).

    Examples
    --------
    >>> ClassifierConfig(method="svm", svm_kernel="linear").method
    'svm'
    """

    method: str = "rf"
    n_estimators: int = 100
    max_depth: int | None = None
    min_samples_leaf: int = 1
    max_features: str = "sqrt"
    svm_kernel: str = "rbf"
    svm_c: float = 1.0
    svm_max_samples: int = 5000
    hgb_max_iter: int = 100
    hgb_learning_rate: float = 0.1
    hgb_max_leaf_nodes: int = 31
    class_weight: str | None = "balanced"
    max_samples_per_class: int | None = 200_000
    n_jobs: int = -1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"classifier method {self.method!r} is not one of {METHODS}")
        if self.n_estimators < 1:
            raise ValueError(f"n_estimators must be >= 1, got {self.n_estimators}")
        if self.max_depth is not None and self.max_depth < 1:
            raise ValueError(f"max_depth must be >= 1 or None, got {self.max_depth}")
        if self.min_samples_leaf < 1:
            raise ValueError(f"min_samples_leaf must be >= 1, got {self.min_samples_leaf}")
        if self.max_features not in ("sqrt", "log2", "all"):
            raise ValueError(f"max_features must be sqrt, log2 or all, got {self.max_features!r}")
        if self.svm_kernel not in ("rbf", "linear"):
            raise ValueError(f"svm_kernel must be rbf or linear, got {self.svm_kernel!r}")
        if not self.svm_c > 0:
            raise ValueError(f"svm_c must be positive, got {self.svm_c}")
        if self.svm_max_samples < 2:
            raise ValueError(f"svm_max_samples must be >= 2, got {self.svm_max_samples}")
        if self.hgb_max_iter < 1 or self.hgb_max_leaf_nodes < 2 or not self.hgb_learning_rate > 0:
            raise ValueError("hgb_max_iter >= 1, hgb_max_leaf_nodes >= 2 and hgb_learning_rate > 0 needed")
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be 'balanced' or None, got {self.class_weight!r}")
        if self.max_samples_per_class is not None and self.max_samples_per_class < 1:
            raise ValueError("max_samples_per_class must be >= 1 or None")
        if self.n_jobs == 0 or self.n_jobs < -1:
            raise ValueError(f"n_jobs must be -1 or >= 1, got {self.n_jobs}")


def _threads(n_jobs: int) -> int:
    return max(1, os.cpu_count() or 1) if n_jobs == -1 else n_jobs


def _make_estimator(cfg: ClassifierConfig) -> Any:
    """A fresh scikit-learn estimator for `cfg` (standard types only, for skops)."""
    if cfg.method == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=cfg.n_estimators,
            max_depth=cfg.max_depth,
            min_samples_leaf=cfg.min_samples_leaf,
            max_features=None if cfg.max_features == "all" else cfg.max_features,
            class_weight=cfg.class_weight,
            n_jobs=cfg.n_jobs,
            random_state=cfg.seed,
        )
    if cfg.method == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=cfg.hgb_max_iter,
            learning_rate=cfg.hgb_learning_rate,
            max_leaf_nodes=cfg.hgb_max_leaf_nodes,
            class_weight=cfg.class_weight,
            early_stopping=False,
            random_state=cfg.seed,
        )
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC, LinearSVC

    if cfg.svm_kernel == "rbf":
        base: Any = SVC(kernel="rbf", C=cfg.svm_c, gamma="scale", class_weight=cfg.class_weight)
    else:
        base = LinearSVC(C=cfg.svm_c, class_weight=cfg.class_weight, random_state=cfg.seed)
    # probabilities: Platt scaling fitted on 3-fold out-of-fold decision values, one final SVM
    svm = CalibratedClassifierCV(base, method="sigmoid", cv=3, ensemble=False)
    return Pipeline([("scale", StandardScaler()), ("svm", svm)])


# --------------------------------------------------------------------------------- prediction


def _forest_tables(estimator: Any) -> list[tuple[Any, np.ndarray]] | None:
    """(tree, leaf class fractions float32) per tree of a fitted forest, else ``None``."""
    trees = getattr(estimator, "estimators_", None)
    if not isinstance(trees, list) or not trees or not hasattr(trees[0], "tree_"):
        return None
    if getattr(estimator, "n_outputs_", 1) != 1:
        return None
    tables = []
    for tree in trees:
        value = np.asarray(tree.tree_.value[:, 0, :], np.float64)
        total = value.sum(axis=1, keepdims=True)
        total[total == 0] = 1.0
        tables.append((tree.tree_, (value / total).astype(np.float32)))
    return tables


def compile_forest_or_none(estimator: Any) -> Any | None:
    """:class:`pixlearn.forest.CompiledForest` of a fitted forest; ``None`` for other estimators
    or without numba (prediction then walks the scikit-learn trees)."""
    if _forest_tables(estimator) is None:
        return None
    try:
        from .forest import compile_forest

        return compile_forest(estimator)
    except ImportError:
        logger.info("numba is not installed: random forests predict through scikit-learn")
        return None
    except ValueError as exc:
        logger.info("forest not compiled (%s): predicting through scikit-learn", exc)
        return None


def predict_stack(
    estimator: Any,
    stack: np.ndarray,
    n_classes: int,
    *,
    n_jobs: int = -1,
    labels: bool = False,
    compiled: Any | None = None,
) -> np.ndarray:
    """Class probabilities (or the most probable class) of every pixel of a feature-major stack.

    Parameters
    ----------
    estimator : fitted scikit-learn classifier
        Trained on class indices ``0..K-1`` (``classes_`` may lack some).
    stack : ndarray of shape (F, ...), float32
        As :func:`pixlearn.features.compute_features_block` with ``feature_axis="first"``.
    n_classes : int
        ``K``, the number of output channels.
    n_jobs : int
        Threads (``-1``: all cores).
    labels : bool
        Return the arg-max class instead. For forests this stops early, exactly, for pixels
        whose class the remaining trees can no longer change.
    compiled : CompiledForest, optional
        :func:`compile_forest_or_none` of `estimator`, reused across calls; compiled here
        when ``None`` and `estimator` is a forest.

    Returns
    -------
    probabilities : ndarray of shape (..., K), float32
        Rows sum to 1; classes absent from training get 0.
    labels : ndarray of shape (...), int64
        With ``labels=True``: ``argmax`` of the probabilities (the first class on exact ties
        of the float32 sums when the forest is evaluated in full).
    """
    n_feat = stack.shape[0]
    spatial = stack.shape[1:]
    flat = stack.reshape(n_feat, -1)
    n = flat.shape[1]
    classes = np.asarray(estimator.classes_, dtype=np.int64)
    if compiled is None:
        compiled = compile_forest_or_none(estimator)
    if compiled is not None:  # numba kernels; flat.T is a (pixels, features) view, no copy
        from .forest import predict_forest, predict_forest_labels

        if labels:
            return classes[predict_forest_labels(compiled, flat.T, n_threads=_threads(n_jobs))].reshape(spatial)
        out = np.zeros((n, n_classes), np.float32)
        out[:, classes] = predict_forest(compiled, flat.T, n_threads=_threads(n_jobs))
        return out.reshape(spatial + (n_classes,))
    out = np.zeros((n, n_classes), np.float32)
    tables = _forest_tables(estimator)
    scale = np.float32(1.0 / len(tables)) if tables else np.float32(1.0)
    if labels and tables is not None:
        label_out = np.empty(n, np.int64)

    def run(start: int) -> None:
        x = np.ascontiguousarray(flat[:, start : start + _CHUNK].T)
        if labels and tables is not None:
            label_out[start : start + x.shape[0]] = classes[_forest_labels(tables, x)]
            return
        if tables is not None:
            acc = np.zeros((x.shape[0], len(classes)), np.float32)
            for tree, fractions in tables:
                acc += fractions[tree.apply(x)]
            acc *= scale
        else:
            acc = estimator.predict_proba(x).astype(np.float32)
        out[start : start + x.shape[0], classes] = acc

    starts = range(0, n, _CHUNK)
    threads = _threads(n_jobs)
    if tables is None:  # SVM pipelines, gradient boosting: their own (OpenMP/BLAS) threads
        with threadpool_limits(limits=threads):
            for start in starts:
                run(start)
    elif threads > 1 and n > _CHUNK:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, starts))
    else:
        for start in starts:
            run(start)
    if labels:
        if tables is not None:
            return label_out.reshape(spatial)
        return np.argmax(out, axis=1).reshape(spatial)
    return out.reshape(spatial + (n_classes,))


def _forest_labels(
    tables: list[tuple[Any, np.ndarray]], x: np.ndarray, group: int = 8
) -> np.ndarray:
    """Index into ``classes_`` of the forest's most probable class for each row of `x`.

    Exact early stop: trees are evaluated in groups, and a pixel leaves the active set once its
    lead over the runner-up exceeds the number of trees still to come (each tree adds at most 1
    to any class), so its arg-max can no longer change. Confident pixels skip most trees.
    """
    n_trees = len(tables)
    n, k = x.shape[0], tables[0][1].shape[1]
    votes = np.zeros((n, k), np.float32)
    active = np.arange(n)
    x_active, votes_active = x, votes.copy()
    for first in range(0, n_trees, group):
        for tree, fractions in tables[first : first + group]:
            votes_active += fractions[tree.apply(x_active)]
        remaining = n_trees - min(n_trees, first + group)
        if remaining == 0:
            break
        if k == 2:
            lead = np.abs(votes_active[:, 0] - votes_active[:, 1])
        else:
            top = np.partition(votes_active, k - 2, axis=1)
            lead = top[:, -1] - top[:, -2]
        settled = lead > remaining + 1e-3  # margin for float32 rounding of the sums
        if settled.any():
            votes[active[settled]] = votes_active[settled]
            keep = ~settled
            active, x_active, votes_active = active[keep], x_active[keep], votes_active[keep]
            if active.size == 0:
                break
    votes[active] = votes_active
    return np.argmax(votes, axis=1)


class _Normalized:
    """A lazy view of a canonical image that normalises whatever region is read."""

    def __init__(self, image: Any, low: np.ndarray, high: np.ndarray) -> None:
        self.image, self.low, self.high = image, low, high
        self.shape = tuple(image.shape)
        self.ndim = len(self.shape)

    def __getitem__(self, region: Any) -> np.ndarray:
        return apply_normalization(np.asarray(self.image[region]), self.low, self.high)


# ------------------------------------------------------------------------------------- model


@dataclasses.dataclass
class PixelClassifier:
    """A fitted pixel classifier: settings plus a scikit-learn estimator.

    Satisfies :class:`pixlearn.model.PixelModel` (``kind="classical"``, ``task="semantic"``).

    Parameters
    ----------
    estimator : fitted scikit-learn classifier
    feature_cfg : FeatureConfig
    clf_cfg : ClassifierConfig
    normalization : NormalizeConfig
    class_names : tuple of str
        One per class; ``K = len(class_names)``.
    ndim : int
        Spatial axes, 2 or 3.
    n_channels : int
    training : dict
        JSON-safe facts about the fit (pixels per class, images, seconds, versions).
    """

    kind: ClassVar[str] = "classical"
    task: ClassVar[str] = "semantic"

    estimator: Any
    feature_cfg: FeatureConfig
    clf_cfg: ClassifierConfig
    normalization: NormalizeConfig
    class_names: tuple[str, ...]
    ndim: int
    n_channels: int
    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    # (estimator, CompiledForest or None): compiled on first prediction, never saved
    _forest: tuple[Any, Any] | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def _compiled_forest(self) -> Any | None:
        if self._forest is None or self._forest[0] is not self.estimator:
            self._forest = (self.estimator, compile_forest_or_none(self.estimator))
        return self._forest[1]

    @property
    def n_outputs(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def halo(self) -> tuple[int, ...]:
        """Feature support radius per spatial axis (see :func:`pixlearn.features.feature_halo`)."""
        return feature_halo(self.feature_cfg, self.ndim)

    @property
    def n_features(self) -> int:
        """Number of features the estimator takes."""
        return n_features(self.feature_cfg, self.n_channels, self.ndim)

    @property
    def bytes_per_pixel(self) -> float:
        """Approximate working memory per block pixel (features, filter temporaries, output)."""
        return 4.0 * (self.n_features + 24 + self.n_outputs)

    def _check(self, image: Any) -> None:
        if image.ndim != self.ndim + 1:
            raise PixlearnError(
                f"the model takes {self.ndim}D images (canonical {self.ndim + 1} axes), "
                f"got shape {tuple(image.shape)}"
            )
        if image.shape[-1] != self.n_channels:
            raise PixlearnError(
                f"the model takes {self.n_channels} channel(s), the image has {image.shape[-1]}"
            )

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities of a normalised canonical block.

        Parameters
        ----------
        image : ndarray of shape (M, N, C) or (P, M, N, C), float32
            Already normalised (:attr:`normalization`).

        Returns
        -------
        probabilities : ndarray of shape (M, N, K) or (P, M, N, K), float32
            Cropping a block padded by :attr:`halo` gives the whole-image values exactly.
        """
        self._check(image)
        full = tuple(slice(0, n) for n in image.shape[:-1])
        stack = compute_features_block(image, full, self.feature_cfg, feature_axis="first")
        return predict_stack(
            self.estimator, stack, self.n_outputs, n_jobs=self.clf_cfg.n_jobs, compiled=self._compiled_forest()
        )

    def predict_probabilities(
        self,
        image: Any,
        *,
        out: Any | None = None,
        block_shape: Sequence[int] | None = None,
    ) -> Any:
        """Normalise a raw canonical image and predict class probabilities block by block.

        Parameters
        ----------
        image : array-like of shape (M, N, C) or (P, M, N, C)
            Raw intensities; may be lazy (Zarr, memory map).
        out : array-like of shape (..., K), optional
            Float32 destination (e.g. a Zarr array); allocated when ``None``.
        block_shape : sequence of int, optional
            Core block size (default :func:`pixlearn.features.default_block_shape`).

        Returns
        -------
        probabilities : array-like of shape (..., K), float32
            `out` when given.
        """
        shape = tuple(image.shape[:-1]) + (self.n_outputs,)
        return self._predict_into(image, out, shape, np.float32, block_shape, labels=False)

    def predict_labels(
        self,
        image: Any,
        *,
        out: Any | None = None,
        block_shape: Sequence[int] | None = None,
    ) -> Any:
        """Normalise a raw canonical image and predict the most probable class per pixel.

        Parameters
        ----------
        image : array-like of shape (M, N, C) or (P, M, N, C)
        out : array-like of shape (M, N) or (P, M, N), optional
            Integer destination; allocated (uint8, or uint16 past 255 classes) when ``None``.
        block_shape : sequence of int, optional

        Returns
        -------
        labels : array-like of shape (M, N) or (P, M, N)
            Class indices ``0..K-1``: the arg-max of :meth:`predict_probabilities`. Random
            forests stop early, exactly, for pixels whose class the remaining trees cannot change.
        """
        dtype = np.uint8 if self.n_outputs <= 256 else np.uint16
        return self._predict_into(image, out, tuple(image.shape[:-1]), dtype, block_shape, labels=True)

    def _predict_into(self, image: Any, out: Any | None, shape: tuple[int, ...], dtype: Any,
                      block_shape: Sequence[int] | None, *, labels: bool) -> Any:
        """Check `image` and `out` (allocated as `shape`/`dtype` when ``None``), fill it by blocks."""
        self._check(image)
        if out is None:
            out = np.empty(shape, dtype)
        elif tuple(out.shape) != shape:
            raise PixlearnError(f"out has shape {tuple(out.shape)}, expected {shape}")
        for core, block in self._blocks(image, block_shape, labels=labels):
            out[core] = block.astype(out.dtype, copy=False)
        return out

    def _blocks(self, image: Any, block_shape: Sequence[int] | None, *, labels: bool = False) -> Any:
        low, high = compute_normalization(image, self.normalization)
        view = _Normalized(image, low, high)
        shape = block_shape or default_block_shape(self.ndim)
        stack = None
        for core in iter_blocks(image.shape[:-1], shape):
            want = (self.n_features,) + tuple(s.stop - s.start for s in core)
            if stack is None or stack.shape != want:
                stack = np.empty(want, np.float32)  # reused: fresh pages are slow to fault in
            compute_features_block(view, core, self.feature_cfg, feature_axis="first", out=stack)
            yield core, predict_stack(
                self.estimator, stack, self.n_outputs, n_jobs=self.clf_cfg.n_jobs, labels=labels,
                compiled=self._compiled_forest(),
            )

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe description of everything but the estimator.

        Returns
        -------
        meta : dict
            Read back by :meth:`from_metadata`.
        """
        return {
            "kind": self.kind,
            "task": self.task,
            "ndim": self.ndim,
            "n_channels": self.n_channels,
            "n_outputs": self.n_outputs,
            "halo": list(self.halo),
            "class_names": list(self.class_names),
            "features": self.feature_cfg.to_dict(),
            "classifier": self.clf_cfg.to_dict(),
            "normalization": self.normalization.to_dict(),
            "training": dict(self.training),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], estimator: Any) -> PixelClassifier:
        """Rebuild a classifier from :meth:`to_metadata` output and its estimator.

        Parameters
        ----------
        meta : dict
        estimator : fitted scikit-learn classifier

        Returns
        -------
        model : PixelClassifier

        Raises
        ------
        PixlearnError
            Missing keys, another model kind, or an estimator that does not match.
        """
        try:
            if meta.get("kind", cls.kind) != cls.kind:
                raise PixlearnError(f"metadata describes a {meta['kind']!r} model, not a classical one")
            model = cls(
                estimator=estimator,
                feature_cfg=FeatureConfig.from_dict(meta["features"]),
                clf_cfg=ClassifierConfig.from_dict(meta["classifier"]),
                normalization=NormalizeConfig.from_dict(meta["normalization"]),
                class_names=tuple(str(c) for c in meta["class_names"]),
                ndim=int(meta["ndim"]),
                n_channels=int(meta["n_channels"]),
                training=dict(meta.get("training", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, PixlearnError):
                raise
            raise PixlearnError(f"bad classical model metadata: {exc!r}") from None
        n_in = getattr(estimator, "n_features_in_", model.n_features)
        if n_in != model.n_features:
            raise PixlearnError(
                f"the estimator takes {n_in} features but the settings give {model.n_features}"
            )
        return model


# ------------------------------------------------------------------------------------ fitting


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
    view = _Normalized(image, low, high)
    n_feat = n_features(feature_cfg, image.shape[-1], len(spatial))
    rows = np.empty((len(selected), n_feat), np.float32)
    if len(selected) == 0:
        return rows
    coords = np.unravel_index(selected, spatial)
    grid = tuple(-(-n // b) for n, b in zip(spatial, block_shape))
    block_id = np.ravel_multi_index(tuple(c // b for c, b in zip(coords, block_shape)), grid)
    order = np.argsort(block_id, kind="stable")
    ids, starts = np.unique(block_id[order], return_index=True)
    bounds = list(starts[1:]) + [len(order)]
    for bid, lo, hi in zip(ids, starts, bounds):
        origin = [i * b for i, b in zip(np.unravel_index(bid, grid), block_shape)]
        core = tuple(slice(o, min(o + b, n)) for o, b, n in zip(origin, block_shape, spatial))
        stack = compute_features_block(view, core, feature_cfg, feature_axis="first")
        members = order[lo:hi]
        local = tuple(c[members] - o for c, o in zip(coords, origin))
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
        Classes ``0..K-1`` and :data:`pixlearn.labels.IGNORE` (-1) for unlabelled pixels.
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
    >>> image = np.zeros((16, 16, 1), np.float32); image[4:12, 4:12] = 1
    >>> targets = np.full((16, 16), -1); targets[0, :] = 0; targets[8, 6:10] = 1
    >>> model = fit_pixel_classifier([image], [targets], FeatureConfig(sigmas=(1.0,)),
    ...                              ClassifierConfig(n_estimators=5))
    >>> model.predict_labels(image)[8, 8]
    np.uint8(1)
    """
    feature_cfg = feature_cfg or FeatureConfig()
    clf_cfg = clf_cfg or ClassifierConfig()
    normalization = normalization or NormalizeConfig()
    images, targets = list(images), [np.asarray(t) for t in targets]
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
    tops = [int(t.max()) for t in targets if t.size and t.max() > IGNORE]
    if not tops:
        raise PixlearnError("no labelled pixels in the targets")
    n_classes = len(class_names) if class_names is not None else max(tops) + 1
    if max(tops) >= n_classes:
        raise PixlearnError(f"target value {max(tops)} is outside the {n_classes} classes")
    names = tuple(class_names) if class_names is not None else tuple(f"class_{k}" for k in range(n_classes))
    counts = np.zeros(n_classes, np.int64)
    for t in targets:
        labelled = t[t != IGNORE]
        counts += np.bincount(labelled, minlength=n_classes)
    if int((counts > 0).sum()) < 2:
        raise PixlearnError(f"only one class is labelled ({names[int(np.argmax(counts))]}); label at least two")

    start = time.perf_counter()
    rng = np.random.default_rng(clf_cfg.seed)
    selected = _select_pixels(targets, n_classes, clf_cfg.max_samples_per_class, rng)
    blocks = tuple(block_shape) if block_shape is not None else default_block_shape(ndim)
    rows, labels = [], []
    for image, target, sel in zip(images, targets, selected):
        low, high = compute_normalization(image, normalization)
        rows.append(_gather(image, low, high, sel, feature_cfg, blocks))
        labels.append(target.reshape(-1)[sel])
    x, y = np.concatenate(rows), np.concatenate(labels).astype(np.int64)
    gather_s = time.perf_counter() - start
    if clf_cfg.method == "svm" and clf_cfg.svm_kernel == "rbf":
        keep = _stratified(y, clf_cfg.svm_max_samples, rng)
        x, y = x[keep], y[keep]
    estimator = _make_estimator(clf_cfg)
    with threadpool_limits(limits=_threads(clf_cfg.n_jobs)):  # OpenMP of gradient boosting
        estimator.fit(x, y)
    fit_s = time.perf_counter() - start - gather_s
    logger.info("fitted %s on %d pixels x %d features in %.2f s", clf_cfg.method, len(y), x.shape[1], fit_s)
    import sklearn

    training = {
        "n_images": len(images),
        "n_pixels": int(len(y)),
        "n_pixels_per_class": [int(c) for c in np.bincount(y, minlength=n_classes)],
        "n_labelled_per_class": [int(c) for c in counts],
        "n_features": int(x.shape[1]),
        "gather_seconds": round(gather_s, 3),
        "fit_seconds": round(fit_s, 3),
        "sklearn_version": sklearn.__version__,
    }
    return PixelClassifier(
        estimator=estimator,
        feature_cfg=feature_cfg,
        clf_cfg=clf_cfg,
        normalization=normalization,
        class_names=names,
        ndim=ndim,
        n_channels=n_channels,
        training=training,
    )
