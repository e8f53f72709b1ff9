"""Loading image classifiers (kind ``"image-classifier"``) from model files, every field checked.

A model file is untrusted input. Before anything is built: the metadata's types (class names,
normalisation, bounds, input shape), the architecture's sizes against :data:`CLASSIFIER_LIMITS`
and its weight count (counted on PyTorch's ``meta`` device, no memory); then the tensors of
``weights.safetensors`` (parsed by safetensors, no code runs) against the architecture's names,
shapes and dtypes. Every problem raises :class:`~pixlearn.errors.ModelFileError` naming the file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from pixlearn.errors import ModelFileError
from pixlearn.models.validate import MAX_CHANNELS, MAX_CLASSES
from pixlearn.models.validate_network import check_state, meta_state_shapes

MAX_CLASSIFIER_PARAMETERS = 1 << 28
MAX_INPUT_SIDE = 1 << 16

#: Upper bounds of the architecture fields of an image classifier file.
CLASSIFIER_LIMITS: dict[str, int | float] = {
    "in_channels": MAX_CHANNELS,
    "n_classes": MAX_CLASSES,
    "width": 1024,
    "depth": 8,
    "blocks_per_stage": 16,
    "max_width": 4096,
    "stem_stride": 8,
    "growth": 8.0,
}


def _fail(message: str, path: str | os.PathLike[str] | None) -> ModelFileError:
    return ModelFileError(message, path)


def _number_list(value: Any, length: int) -> bool:
    return isinstance(value, list) and len(value) == length and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)


def validate_classifier_meta(meta: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> Any:
    """Check an image classifier's metadata; its :class:`ClassifierNetConfig`.

    Raises
    ------
    ModelFileError
        Missing or mistyped fields, sizes past :data:`CLASSIFIER_LIMITS`, class names that do not
        match the outputs, bounds of the wrong length or not finite, or too many weights.
    """
    from pixlearn.nets.classify_config import ClassifierNetConfig

    if not isinstance(meta.get("net"), dict):
        raise _fail("model.json: an image classifier needs its net settings", path)
    net = ClassifierNetConfig.from_dict(meta["net"])
    for name, limit in CLASSIFIER_LIMITS.items():
        if getattr(net, name) > limit:
            raise _fail(f"classifier {name} = {getattr(net, name)} exceeds the limit {limit}", path)
    names = meta.get("class_names")
    if not isinstance(names, list) or len(names) != net.n_classes or not all(isinstance(n, str) for n in names):
        raise _fail(f"model class_names must list {net.n_classes} names (one per output)", path)
    if len(set(names)) != len(names):
        raise _fail("model class_names repeat a name", path)
    bounds = meta.get("dataset_bounds")
    if bounds is not None and not (isinstance(bounds, list) and len(bounds) == 2
                                   and all(_number_list(b, net.in_channels) for b in bounds)):
        raise _fail(f"model dataset_bounds must be two lists of {net.in_channels} finite numbers", path)
    if bounds is not None and any(lo == hi for lo, hi in zip(*bounds)):
        raise _fail("model dataset_bounds have a channel with low == high", path)
    shape = meta.get("input_shape")
    if shape is not None and not (isinstance(shape, list) and len(shape) == net.ndim and all(
            isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_INPUT_SIDE for s in shape)):
        raise _fail(f"model input_shape must be {net.ndim} sizes of 1..{MAX_INPUT_SIDE}", path)
    count = sum(math.prod(s) for s in expected_classifier_shapes(net).values())
    if count > MAX_CLASSIFIER_PARAMETERS:
        raise _fail(f"classifier has {count} weights, more than the limit {MAX_CLASSIFIER_PARAMETERS}", path)
    return net


def expected_classifier_shapes(net_config: Any) -> dict[str, tuple[int, ...]]:
    """Name and shape of every tensor of ``ResidualClassifier(net_config)``, without allocating it."""
    from pixlearn.nets.classifier import ResidualClassifier

    return meta_state_shapes(ResidualClassifier, net_config)


def validate_classifier_state(net_config: Any, state: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> None:
    """Check that the tensors of a weights file are exactly those of the architecture.

    Raises
    ------
    ModelFileError
        Missing or extra tensors, another shape, a non-float dtype (but the batch counters), or
        values that are not finite.
    """
    check_state(expected_classifier_shapes(net_config), state, path, finite=True)


def load_image_classifier(meta: dict[str, Any], weights: bytes | None, path: str | os.PathLike[str],
                          device: Any = None) -> Any:
    """An :class:`~pixlearn.nets.classifier_model.ImageClassifierModel` from checked metadata and weights.

    Raises
    ------
    ModelFileError
        No weights, corrupt weights, or anything :func:`validate_classifier_meta` and
        :func:`validate_classifier_state` refuse.
    """
    from safetensors.torch import load

    from pixlearn.nets.classifier_model import ImageClassifierModel

    if weights is None:
        raise _fail("image classifier without weights.safetensors", path)
    net = validate_classifier_meta(meta, path)
    try:
        state = load(weights)
    except Exception as exc:
        raise _fail(f"weights.safetensors is corrupt ({type(exc).__name__}: {exc})", path) from None
    validate_classifier_state(net, state, path)
    return ImageClassifierModel.from_metadata(meta, state, device=device)


__all__ = ["CLASSIFIER_LIMITS", "expected_classifier_shapes", "load_image_classifier", "validate_classifier_meta",
           "validate_classifier_state"]
