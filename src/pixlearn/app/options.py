"""Options of the ``pixlearn`` command read into values: durations, sizes, lists, the experiment.

Each reader takes the text of one option and returns its value, or raises
:class:`~pixlearn.errors.PixlearnError` naming the option (the command's one error path prints
it, exit code 2).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

from pixlearn.errors import PixlearnError

logger = logging.getLogger("pixlearn")


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




def experiment_from_options(
    config: Path | None,
    method: str,
    *,
    sigmas: str | None,
    n_estimators: int | None,
    epochs: int | None,
    time_limit: str | None,
    seed: int | None,
) -> Any:
    """The config file's :class:`~pixlearn.experiment.ExperimentConfig` with the given options applied.

    An option replaces the field it names (``dataclasses.replace`` on its section); an option
    left out keeps the file's value. ``--method`` always decides the classifier.
    """
    from pixlearn.experiment import ExperimentConfig

    try:  # parsed for every method, so that a typo is never silently ignored
        limit_s = parse_duration(time_limit) if time_limit is not None else None
    except ValueError as exc:
        raise PixlearnError(f"--time-limit: {exc}") from None
    experiment = ExperimentConfig() if config is None else ExperimentConfig.from_file(config)
    if method == "unet":
        train: dict[str, Any] = {"seed": seed} if seed is not None else {}
        if epochs is not None:
            train["epochs"] = epochs
        if limit_s is not None:
            train["time_limit_s"] = limit_s
        return dataclasses.replace(experiment, train=dataclasses.replace(experiment.train, **train))
    classifier: dict[str, Any] = {"method": method}
    if seed is not None:
        classifier["seed"] = seed
    if n_estimators is not None:
        classifier["rf"] = {"n_estimators": n_estimators}
    features = experiment.features
    if limit_s is not None or epochs is not None:
        logger.warning("--time-limit and --epochs apply to --method unet only; ignored for %s", method)
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
