"""The live preview's random forest: its configuration, the cores it may use, a fresh estimator.

:class:`PreviewConfig` holds the few, shallow trees of the preview that
:class:`pixlearn.classical.interactive.InteractiveSession` refits after each stroke, and how the
session cuts the image into feature-cache tiles and suggested regions.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from pixlearn.config import Config


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
