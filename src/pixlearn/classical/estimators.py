"""The scikit-learn estimator a :class:`~pixlearn.classical.config.ClassifierConfig` describes,
and the thread count its ``n_jobs`` means. scikit-learn is imported when an estimator is made."""

from __future__ import annotations

import os
from typing import Any

from pixlearn.classical.config import ClassifierConfig

__all__ = ["make_estimator", "n_threads"]


def n_threads(n_jobs: int) -> int:
    """Threads that an ``n_jobs`` setting stands for, resolved now.

    Parameters
    ----------
    n_jobs : int
        ``-1`` (all cores of this machine) or a positive count.

    Returns
    -------
    threads : int
        At least 1.

    Examples
    --------
    >>> n_threads(3)
    3
    >>> n_threads(-1) >= 1
    True
    """
    return max(1, os.cpu_count() or 1) if n_jobs == -1 else n_jobs


def make_estimator(cfg: ClassifierConfig) -> Any:
    """A fresh, unfitted scikit-learn estimator for `cfg`.

    Only standard scikit-learn types, so that a fitted one saves with skops' trusted types.

    Parameters
    ----------
    cfg : ClassifierConfig
        ``cfg.method`` picks the section used (``cfg.rf``, ``cfg.svm`` or ``cfg.hgb``).

    Returns
    -------
    estimator : RandomForestClassifier, HistGradientBoostingClassifier or Pipeline
        An SVM is a ``Pipeline`` of ``StandardScaler`` and a sigmoid-calibrated
        (``CalibratedClassifierCV``, 3-fold, one final SVM) ``SVC`` or ``LinearSVC``.

    Examples
    --------
    >>> from pixlearn.classical.config import ForestConfig
    >>> make_estimator(ClassifierConfig(rf=ForestConfig(n_estimators=3))).n_estimators
    3
    """
    if cfg.method == "rf":
        from sklearn.ensemble import RandomForestClassifier

        rf = cfg.rf
        return RandomForestClassifier(
            n_estimators=rf.n_estimators,
            max_depth=rf.max_depth,
            min_samples_leaf=rf.min_samples_leaf,
            max_features=None if rf.max_features == "all" else rf.max_features,
            class_weight=cfg.class_weight,
            n_jobs=cfg.n_jobs,
            random_state=cfg.seed,
        )
    if cfg.method == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=cfg.hgb.max_iter,
            learning_rate=cfg.hgb.learning_rate,
            max_leaf_nodes=cfg.hgb.max_leaf_nodes,
            class_weight=cfg.class_weight,
            early_stopping=False,
            random_state=cfg.seed,
        )
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    if cfg.svm.kernel == "rbf":
        base: Any = SVC(kernel="rbf", C=cfg.svm.c, gamma="scale", class_weight=cfg.class_weight)
    else:
        base = LinearSVC(C=cfg.svm.c, class_weight=cfg.class_weight, random_state=cfg.seed)
    # probabilities: Platt scaling fitted on 3-fold out-of-fold decision values, one final SVM
    svm = CalibratedClassifierCV(base, method="sigmoid", cv=3, ensemble=False)
    return Pipeline([("scale", StandardScaler()), ("svm", svm)])
