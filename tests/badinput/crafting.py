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
ARRAYS = "classifier.safetensors"  # the estimator as plain arrays (schema 2)
CLASSIFIER = "classifier.skops"  # the estimator as skops (schema 1, still read)


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


def fit_tiny_object_classifier() -> Any:
    """A fitted :class:`ObjectClassifier` on the two squares of :func:`tiny_image` (one class each)."""
    from scipy import ndimage

    from pixlearn.classical.config import ClassifierConfig
    from pixlearn.classical.object_model import fit_object_classifier

    image = tiny_image()
    labels, _ = ndimage.label(image > 0.5)
    config = ClassifierConfig().with_overrides({"rf": {"n_estimators": 3}, "seed": 1, "n_jobs": 1})
    return fit_object_classifier([image], [labels], [{1: 0, 2: 1}], class_names=["a", "b"], clf_cfg=config)


def read_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def write_members(path: Path, members: dict[str, bytes] | list[tuple[str, bytes]]) -> Path:
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in items:
            zf.writestr(name, data)
    return path


def load_estimator(members: dict[str, bytes]) -> Any:
    """The estimator of a classical model's members, of either schema (no checks: tests only)."""
    if ARRAYS in members:
        from pixlearn.classical.estimator_arrays import load_estimator_bytes

        return load_estimator_bytes(json.loads(members[MODEL_JSON])["estimator"], members[ARRAYS])
    import skops.io

    data = members[CLASSIFIER]
    return skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))


def legacy_members(members: dict[str, bytes], estimator: Any = None) -> dict[str, bytes]:
    """The members of a schema 1 model (estimator as ``classifier.skops``), as pixlearn wrote
    them before the array format; `estimator` replaces the model's own."""
    import skops.io

    estimator = load_estimator(members) if estimator is None else estimator
    header = json.loads(members[MODEL_JSON])
    header["schema_version"] = 1
    header.pop("estimator", None)
    legacy = {name: data for name, data in members.items() if name != ARRAYS}
    legacy[MODEL_JSON] = json.dumps(header).encode()
    legacy[CLASSIFIER] = skops.io.dumps(estimator)
    return legacy


def with_estimator(source: Path, target: Path, edit: Callable[[Any], Any]) -> Path:
    """Copy of the model zip `source` whose estimator is ``edit(estimator)`` (or edited in place),
    written as a schema 1 (skops) model: skops stores any estimator, edited or not."""
    members = read_members(source)
    estimator = load_estimator(members)
    edited = edit(estimator)
    return write_members(target, legacy_members(members, estimator if edited is None else edited))


def with_arrays(source: Path, target: Path, edit: Callable[[dict[str, np.ndarray], dict[str, Any]], Any]) -> Path:
    """Copy of the model zip `source` (schema 2) with ``edit(arrays, estimator_meta)`` applied
    to its ``classifier.safetensors`` arrays and their description in ``model.json``."""
    from safetensors.numpy import load, save

    members = read_members(source)
    header = json.loads(members[MODEL_JSON])
    arrays = dict(load(members[ARRAYS]))
    edit(arrays, header["estimator"])
    members[ARRAYS] = save({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    members[MODEL_JSON] = json.dumps(header).encode()
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
