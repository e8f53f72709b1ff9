"""Builders of crafted model files: a real tiny model, rewritten with one defect at a time.

Shared by ``tests/models`` and the bad-input corpus (importable as ``badinput.crafting``
because ``tests`` is on the pytest path).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MODEL_JSON = "model.json"
CLASSIFIER = "classifier.skops"


def tiny_image(seed: int = 0) -> np.ndarray:
    """A (24, 20) float32 image of two bright squares on a noisy background."""
    rng = np.random.default_rng(seed)
    image = np.full((24, 20), 0.2, np.float32)
    image[3:10, 4:12] = 0.8
    image[14:21, 9:17] = 0.8
    return image + rng.normal(0.0, 0.05, image.shape).astype(np.float32)


def fit_tiny_classical(method: str = "rf", n_classes: int = 2, **clf: Any) -> Any:
    """A fitted :class:`PixelClassifier` of `method` on :func:`tiny_image` (a few ms to fit)."""
    from pixlearn.classical.config import ClassifierConfig
    from pixlearn.classical.features import FeatureConfig
    from pixlearn.classical.fit import fit_pixel_classifier

    image = tiny_image()
    labels = (image > 0.5).astype(np.int64)
    if n_classes == 3:
        labels[:, :3] = 2
    defaults = {"rf": {"n_estimators": 3}, "hgb": {"max_iter": 3}, "svm": {"max_samples": 200}, "seed": 1, "n_jobs": 1}
    config = ClassifierConfig(method=method).with_overrides({**defaults, **clf})
    return fit_pixel_classifier(
        [image[..., None]], [labels], FeatureConfig(sigmas=(1.0,), features=("gaussian", "gradient_magnitude")),
        config, class_names=[f"c{k}" for k in range(n_classes)],
    )


def read_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def write_members(path: Path, members: dict[str, bytes] | list[tuple[str, bytes]]) -> Path:
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in items:
            zf.writestr(name, data)
    return path


def load_estimator(data: bytes) -> Any:
    import skops.io

    return skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))


def with_estimator(source: Path, target: Path, edit: Callable[[Any], Any]) -> Path:
    """Copy of the model zip `source` whose estimator is ``edit(estimator)`` (or edited in place)."""
    import skops.io

    members = read_members(source)
    estimator = load_estimator(members[CLASSIFIER])
    edited = edit(estimator)
    members[CLASSIFIER] = skops.io.dumps(estimator if edited is None else edited)
    return write_members(target, members)


def with_header(source: Path, target: Path, edit: Callable[[dict[str, Any]], Any]) -> Path:
    """Copy of the model zip `source` with ``edit(header)`` applied to its ``model.json``."""
    members = read_members(source)
    header = json.loads(members[MODEL_JSON])
    edit(header)
    members[MODEL_JSON] = json.dumps(header).encode()
    return write_members(target, members)


def edit_tree(field: str, index: int, value: Any, tree: int = 0) -> Callable[[Any], None]:
    """An edit setting ``nodes[field][index] = value`` of one scikit-learn tree of a forest
    (``left_child``, ``right_child``, ``feature``, ``threshold``, ...); ``index=-1``: first inner node."""

    def edit(forest: Any) -> None:
        t = forest.estimators_[tree].tree_
        state = t.__getstate__()
        nodes = state["nodes"].copy()
        i = int(np.flatnonzero(nodes["left_child"] >= 0)[0]) if index == -1 else index
        nodes[field][i] = value
        state["nodes"] = nodes
        t.__setstate__(state)

    return edit


def edit_predictor(field: str, index: int, value: Any) -> Callable[[Any], None]:
    """An edit setting ``nodes[field][index] = value`` of the first gradient-boosting tree."""

    def edit(hgb: Any) -> None:
        nodes = hgb._predictors[0][0].nodes
        i = int(np.flatnonzero(nodes["is_leaf"] == 0)[0]) if index == -1 else index
        nodes[field][i] = value

    return edit


def first_svc(pipeline: Any) -> Any:
    """The SVC inside pixlearn's SVM pipeline."""
    return pipeline.steps[1][1].calibrated_classifiers_[0].estimator
