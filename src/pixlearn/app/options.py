"""The options of the ``pixlearn`` command, parsed: choices, durations, sizes, the experiment.

The typer layer (:mod:`pixlearn.app.cli`) declares the options; what they mean is here, as
plain functions that raise :class:`~pixlearn.errors.PixlearnError` naming the option.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from pixlearn.errors import PixlearnError

logger = logging.getLogger("pixlearn")


class Method(str, Enum):
    """How a model is trained: a classical classifier (rf, svm, hgb) a U-Net, or an image classifier (cnn)."""

    rf = "rf"
    svm = "svm"
    hgb = "hgb"
    unet = "unet"
    cnn = "cnn"


class Task(str, Enum):
    """What a model learns: classical pixel models semantic only; objects: classes of segmented objects."""

    semantic = "semantic"
    instances = "instances"
    restore = "restore"
    classify = "classify"
    objects = "objects"


class LabelKind(str, Enum):
    """How the annotation files are read (:func:`pixlearn.data.labels.to_class_targets`)."""

    dense = "dense"
    scribbles = "scribbles"
    instances = "instances"


class Precision(str, Enum):
    """Arithmetic of a network (:func:`pixlearn.nets.precision.resolve_precision`)."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


PRECISION_HELP = ("Networks: fp32, bf16, or auto: on a CPU, bf16 and channels-last only where a short measurement "
                  "(once per machine, cached) finds them faster; on CUDA, mixed precision for training.")


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"20m"``, ``"1.5h"`` or ``"1h30m"``.

    Examples
    --------
    >>> parse_duration("20m"), parse_duration("1h30m"), parse_duration("45")
    (1200.0, 5400.0, 45.0)
    """
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"cannot read duration {text!r}; use e.g. 90s, 20m, 1h30m")
    return float(sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts))


def parse_ints(text: str, option: str) -> tuple[int, ...]:
    """``"512,512"`` as ``(512, 512)``; anything else refused naming `option`."""
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise PixlearnError(f"{option}: cannot read {text!r}; use whole numbers separated by commas, e.g. 512,512") from None


def parse_diameter(text: str | None, option: str = "--diameter") -> float | str | None:
    """``--diameter`` (or the `option` named): a positive number of pixels, ``"auto"`` or nothing."""
    if text is None or text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise PixlearnError(f"{option}: cannot read {text!r}; use a positive number of pixels or 'auto'")
    return value


OBJECT_DIAMETER_HELP = (
    "Scale normalisation (--method unet, instances or semantic): resize each training image so that its objects' "
    "median diameter becomes N px ('auto': the median over the training set), with a random zoom of each patch "
    "(train.scale_jitter, default x1.25). The model records N, so predict --diameter auto|D brings other images "
    "to it."
)


def with_object_diameter(experiment: Any, method: Method, text: str | None) -> Any:
    """`experiment` with ``--object-diameter`` as ``train.target_diameter`` (unchanged without it).

    Raises
    ------
    PixlearnError
        A value that cannot be read, or a method other than ``unet``.
    """
    target = parse_diameter(text, option="--object-diameter")
    if target is None:
        return experiment
    if method != Method.unet:
        raise PixlearnError(f"--object-diameter trains networks only; use --method unet, not {method.value}")
    return dataclasses.replace(experiment, train=experiment.train.replace(target_diameter=target))


def check_model_output(output: Path, *, overwrite: bool, data: Sequence[Path | None]) -> None:
    """Refuse a model output that is, or lies inside, a data folder, or that holds anything but a
    pixlearn model (replaced only with `overwrite`)."""
    from pixlearn.models.model_file import check_model_target

    target = output.resolve()
    for folder in data:
        if folder is None:
            continue
        if not folder.is_dir():  # the data's own problem first, as reading the pairs would say it
            raise PixlearnError("not a folder", folder)
        resolved = folder.resolve()
        if target == resolved or resolved in target.parents:
            raise PixlearnError(f"the model output is {'' if target == resolved else 'inside '}the data folder "
                                f"{folder}; choose another output", output)
    check_model_target(output, overwrite=overwrite)


def experiment_from_options(
    config: Path | None,
    method: Method,
    *,
    sigmas: str | None,
    n_estimators: int | None,
    epochs: int | None,
    time_limit: str | None,
    seed: int | None,
    precision: Precision | None = None,
) -> Any:
    """The config file's :class:`~pixlearn.experiment.ExperimentConfig` with the given options applied.

    An option replaces the field it names (``dataclasses.replace`` on its section); an option
    left out keeps the file's value. ``--method`` always decides the classifier; the network
    options (`epochs`, `time_limit`, `precision`) are ignored, with a warning, for the others.

    Raises
    ------
    PixlearnError
        An option value that cannot be read (its message names the option).
    """
    from pixlearn.experiment import ExperimentConfig

    try:  # parsed for every method, so that a typo is never silently ignored
        limit_s = parse_duration(time_limit) if time_limit is not None else None
    except ValueError as exc:
        raise PixlearnError(f"--time-limit: {exc}") from None
    experiment = ExperimentConfig() if config is None else ExperimentConfig.from_file(config)
    if method == Method.cnn:
        given = {"seed": seed, "epochs": epochs, "time_limit_s": limit_s}
        classify = experiment.classify
        train_cfg = classify.train.replace(**{k: v for k, v in given.items() if v is not None})
        return dataclasses.replace(experiment, classify=classify.replace(train=train_cfg))
    if method == Method.unet:
        train: dict[str, Any] = {"seed": seed} if seed is not None else {}
        if epochs is not None:
            train["epochs"] = epochs
        if limit_s is not None:
            train["time_limit_s"] = limit_s
        if precision is not None:
            train["precision"] = precision.value
        return dataclasses.replace(experiment, train=dataclasses.replace(experiment.train, **train))
    classifier: dict[str, Any] = {"method": method.value}
    if seed is not None:
        classifier["seed"] = seed
    if n_estimators is not None:
        classifier["rf"] = {"n_estimators": n_estimators}
    features = experiment.features
    if limit_s is not None or epochs is not None or precision is not None:
        logger.warning("--time-limit, --epochs and --precision apply to --method unet only; ignored for %s",
                       method.value)
    if sigmas:
        try:
            values = tuple(float(s) for s in sigmas.split(","))
        except ValueError:
            raise PixlearnError(f"--sigmas: cannot read {sigmas!r}; use e.g. 1,2,4") from None
        features = dataclasses.replace(features, sigmas=values)
    return dataclasses.replace(experiment, features=features,
                               classifier=experiment.classifier.with_overrides(classifier))


def parse_memory_option(text: str | None) -> int:
    """Bytes of ``--memory`` (``"2GiB"``), or the default budget
    (:func:`pixlearn.data.memory.default_memory_budget`) when it is not given."""
    from pixlearn.data.memory import default_memory_budget, parse_memory

    if text is None:
        return default_memory_budget()
    try:
        return parse_memory(text)
    except ValueError as exc:
        raise PixlearnError(f"--memory: {exc}") from None


def parse_spacing_option(text: str | None) -> tuple[float, ...] | None:
    """``--spacing z,y,x`` as floats (``None`` when not given)."""
    from pixlearn.data.spacing import parse_spacing

    if text is None:
        return None
    try:
        return parse_spacing(text)
    except ValueError as exc:
        raise PixlearnError(f"--spacing: {exc}") from None


__all__ = ["OBJECT_DIAMETER_HELP", "PRECISION_HELP", "LabelKind", "Method", "Precision", "Task", "check_model_output", "experiment_from_options",
           "parse_diameter", "parse_duration", "parse_ints", "parse_memory_option", "parse_spacing_option",
           "with_object_diameter"]
