"""Classifier configuration: the method, one section of settings per method, and the shared ones.

``ClassifierConfig(method="rf", rf=ForestConfig(...), svm=SVMConfig(...), hgb=BoostingConfig(...),
class_weight=..., max_samples_per_class=..., n_jobs=..., seed=...)``; only the section of
`method` is used. Model files and config files written before the sections existed kept every
setting at the top level with a prefix (``svm_kernel``, ``hgb_max_iter``) or none (the forest's
``n_estimators``); :meth:`ClassifierConfig.from_dict` still reads them (:data:`LEGACY_KEYS`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from typing_extensions import Self

from pixlearn.config import Config

METHODS: tuple[str, ...] = ("rf", "svm", "hgb")

# flat key of the layout before the sections -> (section, key)
LEGACY_KEYS: dict[str, tuple[str, str]] = {
    "n_estimators": ("rf", "n_estimators"),
    "max_depth": ("rf", "max_depth"),
    "min_samples_leaf": ("rf", "min_samples_leaf"),
    "max_features": ("rf", "max_features"),
    "svm_kernel": ("svm", "kernel"),
    "svm_c": ("svm", "c"),
    "svm_max_samples": ("svm", "max_samples"),
    "hgb_max_iter": ("hgb", "max_iter"),
    "hgb_learning_rate": ("hgb", "learning_rate"),
    "hgb_max_leaf_nodes": ("hgb", "max_leaf_nodes"),
}


@dataclasses.dataclass(frozen=True)
class ForestConfig(Config):
    """Random forest (``method="rf"``).

    Parameters
    ----------
    n_estimators : int
        Trees.
    max_depth : int, optional
        Depth limit; ``None``: grow until pure.
    min_samples_leaf : int
        Smallest leaf.
    max_features : {"sqrt", "log2", "all"}
        Features tried per split.

    Notes
    -----
    The defaults (24 trees grown until pure, on at most 100,000 training pixels per class:
    :attr:`ClassifierConfig.max_samples_per_class`) were chosen by measurement on three data sets
    in one run (``benchmarks/pixel_classifier.py``, ``benchmarks/vnc_rf.py``). Against trees of
    depth 12 on 20,000 pixels per class, the choice of the round before, test IoU rose from 0.522
    to 0.580 on ISBI 2012 scribbles (scikit-learn's 100 unbounded trees: 0.571), from 0.945 to
    0.964 on the synthetic 3D volume (0.963) and, for membranes, from 0.579 to 0.593 on the VNC
    stack, for about 20% more prediction time. The pixel cap, not the depth, bounds the size of a
    tree; the memory budget (:mod:`pixlearn.classical.budget`) bounds both.

    Examples
    --------
    >>> ForestConfig(n_estimators=10).max_features
    'sqrt'
    """

    n_estimators: int = 24
    max_depth: int | None = None
    min_samples_leaf: int = 1
    max_features: str = "sqrt"

    def __post_init__(self) -> None:
        if self.n_estimators < 1:
            raise ValueError(f"rf.n_estimators must be >= 1, got {self.n_estimators}")
        if self.max_depth is not None and self.max_depth < 1:
            raise ValueError(f"rf.max_depth must be >= 1 or None, got {self.max_depth}")
        if self.min_samples_leaf < 1:
            raise ValueError(f"rf.min_samples_leaf must be >= 1, got {self.min_samples_leaf}")
        if self.max_features not in ("sqrt", "log2", "all"):
            raise ValueError(f"rf.max_features must be sqrt, log2 or all, got {self.max_features!r}")


@dataclasses.dataclass(frozen=True)
class SVMConfig(Config):
    """Support-vector machine (``method="svm"``).

    Both kernels standardise the features first and give sigmoid-calibrated (Platt) probabilities.

    Parameters
    ----------
    kernel : {"rbf", "linear"}
        ``"rbf"``: kernel SVM (``SVC``) fitted on a class-stratified subsample of at most
        `max_samples` pixels; ``"linear"``: ``LinearSVC`` on all gathered pixels.
    c : float
        Regularisation strength, scikit-learn's ``C``.
    max_samples : int
        Pixel cap for the RBF kernel.

    Examples
    --------
    >>> SVMConfig(kernel="linear").c
    1.0
    """

    kernel: str = "rbf"
    c: float = 1.0
    max_samples: int = 5000

    def __post_init__(self) -> None:
        if self.kernel not in ("rbf", "linear"):
            raise ValueError(f"svm.kernel must be rbf or linear, got {self.kernel!r}")
        if not self.c > 0:
            raise ValueError(f"svm.c must be positive, got {self.c}")
        if self.max_samples < 2:
            raise ValueError(f"svm.max_samples must be >= 2, got {self.max_samples}")


@dataclasses.dataclass(frozen=True)
class BoostingConfig(Config):
    """Histogram gradient boosting (``method="hgb"``).

    Parameters
    ----------
    max_iter : int
        Boosting rounds.
    learning_rate : float
        Step size.
    max_leaf_nodes : int
        Leaves per tree.

    Examples
    --------
    >>> BoostingConfig(max_iter=20).learning_rate
    0.1
    """

    max_iter: int = 100
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31

    def __post_init__(self) -> None:
        if self.max_iter < 1:
            raise ValueError(f"hgb.max_iter must be >= 1, got {self.max_iter}")
        if not self.learning_rate > 0:
            raise ValueError(f"hgb.learning_rate must be positive, got {self.learning_rate}")
        if self.max_leaf_nodes < 2:
            raise ValueError(f"hgb.max_leaf_nodes must be >= 2, got {self.max_leaf_nodes}")


_SECTIONS: dict[str, type[Config]] = {"rf": ForestConfig, "svm": SVMConfig, "hgb": BoostingConfig}


@dataclasses.dataclass(frozen=True)
class ClassifierConfig(Config):
    """Which classifier and how to train it.

    Parameters
    ----------
    method : {"rf", "svm", "hgb"}
        Random forest, support-vector machine, or histogram gradient boosting.
    rf : ForestConfig
        Settings of the random forest.
    svm : SVMConfig
        Settings of the support-vector machine.
    hgb : BoostingConfig
        Settings of gradient boosting.
    class_weight : {"balanced", None}
        ``"balanced"`` weights classes inversely to their pixel counts.
    max_samples_per_class : int, optional
        Cap of training pixels per class (uniform random subsample, for dense masks; the
        memory budget of training may allow fewer). 100,000 per class, with trees grown until
        pure, scored better than 20,000 on sparse scribbles and dense EM labels alike (see
        :class:`ForestConfig`).
    n_jobs : int
        Threads for fitting and prediction (``-1``: all cores; OpenMP and BLAS pools are
        limited to it too). Does not change results.
    seed : int
        Seed of every random choice (subsampling, bootstrap, SVM).

    Examples
    --------
    >>> cfg = ClassifierConfig(method="svm", svm=SVMConfig(kernel="linear"))
    >>> cfg.svm.kernel, cfg.to_dict()["svm"]
    ('linear', {'kernel': 'linear', 'c': 1.0, 'max_samples': 5000})
    >>> ClassifierConfig.from_dict({"n_estimators": 5}).rf.n_estimators  # a model file of before
    5
    """

    method: str = "rf"
    rf: ForestConfig = dataclasses.field(default_factory=ForestConfig)
    svm: SVMConfig = dataclasses.field(default_factory=SVMConfig)
    hgb: BoostingConfig = dataclasses.field(default_factory=BoostingConfig)
    class_weight: str | None = "balanced"
    max_samples_per_class: int | None = 100_000
    n_jobs: int = -1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"classifier method {self.method!r} is not one of {METHODS}")
        for name, kind in _SECTIONS.items():
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"ClassifierConfig.{name} must be a {kind.__name__}, got {getattr(self, name)!r}")
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be 'balanced' or None, got {self.class_weight!r}")
        if self.max_samples_per_class is not None and self.max_samples_per_class < 1:
            raise ValueError("max_samples_per_class must be >= 1 or None")
        if self.n_jobs == 0 or self.n_jobs < -1:
            raise ValueError(f"n_jobs must be -1 or >= 1, got {self.n_jobs}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build from a dict; the flat keys of model files of before are read too.

        Parameters
        ----------
        data : dict
            As written by :meth:`to_dict` (sections ``rf``, ``svm``, ``hgb``), or with the
            flat keys of :data:`LEGACY_KEYS` (``svm_kernel``, ``n_estimators``, ...), which go
            into their sections.

        Returns
        -------
        config : ClassifierConfig

        Raises
        ------
        ValueError
            Unknown keys, a flat key together with its sectioned form, or invalid values.
        """
        return super().from_dict(_sectioned(data))

    def with_overrides(self, overrides: dict[str, Any]) -> ClassifierConfig:
        """A copy with some values replaced, sections merged key by key.

        Parameters
        ----------
        overrides : dict
            In the layout of :meth:`from_dict`, e.g. ``{"method": "rf", "rf": {"n_estimators": 10}}``
            (the other keys of ``rf`` are kept).

        Returns
        -------
        config : ClassifierConfig
            Validated again.

        Examples
        --------
        >>> cfg = ClassifierConfig(rf=ForestConfig(max_depth=4))
        >>> cfg.with_overrides({"rf": {"n_estimators": 7}}).rf
        ForestConfig(n_estimators=7, max_depth=4, min_samples_leaf=1, max_features='sqrt')
        """
        data = self.to_dict()
        for key, value in _sectioned(overrides).items():
            if key in _SECTIONS and isinstance(value, dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return type(self).from_dict(data)


def _sectioned(data: Any) -> Any:
    """`data` with the flat keys of :data:`LEGACY_KEYS` moved into their sections."""
    if not isinstance(data, dict) or not set(data) & set(LEGACY_KEYS):
        return data
    out: dict[str, Any] = {}
    moved: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key in LEGACY_KEYS:
            section, name = LEGACY_KEYS[key]
            moved.setdefault(section, {})[name] = value
        else:
            out[key] = value
    for section, values in moved.items():
        given = out.get(section, {})
        if not isinstance(given, dict):
            raise ValueError(f"ClassifierConfig.{section}: expected a mapping, got {type(given).__name__}")
        both = sorted(set(given) & set(values))
        if both:
            flat = sorted(k for k, (s, n) in LEGACY_KEYS.items() if s == section and n in both)
            raise ValueError(f"ClassifierConfig: {flat} given both flat and in section {section!r} as {both}")
        out[section] = {**given, **values}
    return out
