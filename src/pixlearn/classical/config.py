"""Classifier configuration and the scikit-learn estimators it builds."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from pixlearn.config import Config

logger = logging.getLogger(__name__)


METHODS: tuple[str, ...] = ("rf", "svm", "hgb")


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
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    if cfg.svm_kernel == "rbf":
        base: Any = SVC(kernel="rbf", C=cfg.svm_c, gamma="scale", class_weight=cfg.class_weight)
    else:
        base = LinearSVC(C=cfg.svm_c, class_weight=cfg.class_weight, random_state=cfg.seed)
    # probabilities: Platt scaling fitted on 3-fold out-of-fold decision values, one final SVM
    svm = CalibratedClassifierCV(base, method="sigmoid", cv=3, ensemble=False)
    return Pipeline([("scale", StandardScaler()), ("svm", svm)])

