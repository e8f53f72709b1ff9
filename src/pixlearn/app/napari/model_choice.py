"""Which models the plugin offers and which it can apply, as pure functions (no Qt, no napari).

The plugin applies pixel models (:class:`pixlearn.models.protocol.PixelModel`: semantic,
instance or restoration outputs per pixel) to the open image. :func:`builtin_choices` lists the
built-in models (:mod:`pixlearn.zoo`) to offer beside a model file; :func:`refusal` says, in one
line, why a loaded model cannot be applied (an image classifier gives one class per image), or
``None`` when it can.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["APPLICABLE_TASKS", "BuiltinChoice", "builtin_choices", "refusal"]

#: Tasks whose models give one output per pixel, which the plugin shows as a layer.
APPLICABLE_TASKS = ("semantic", "instances", "restore")


@dataclasses.dataclass(frozen=True)
class BuiltinChoice:
    """A built-in model as the model chooser shows it.

    Attributes
    ----------
    name : str
        What :func:`pixlearn.zoo.load_model` takes (e.g. ``"nuclei"``).
    task : str
    summary : str
        One line of its model card (the tooltip).
    """

    name: str
    task: str
    summary: str

    @property
    def label(self) -> str:
        """The text of the chooser's entry, e.g. ``"nuclei (instances)"``."""
        return f"{self.name} ({self.task})"


def builtin_choices() -> tuple[BuiltinChoice, ...]:
    """The built-in models the plugin can apply, in name order.

    Returns
    -------
    choices : tuple of BuiltinChoice
        Built-in models of the tasks in :data:`APPLICABLE_TASKS`.

    Examples
    --------
    >>> [choice.label for choice in builtin_choices()]
    ['nuclei (instances)']
    """
    from pixlearn.zoo import builtin_models

    return tuple(BuiltinChoice(m.name, m.task, str(m.card.get("summary", ""))) for m in builtin_models()
                 if m.task in APPLICABLE_TASKS)


def refusal(model: Any, name: str = "the model") -> str | None:
    """Why the plugin cannot apply `model` to an image, in one line, or ``None`` when it can.

    Parameters
    ----------
    model : object
        A loaded model (anything :func:`pixlearn.models.model_file.load_model` returns).
    name : str
        How the message names the model (a file name or a built-in model's name).

    Returns
    -------
    message : str or None

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> refusal(SimpleNamespace(kind="network", task="instances")) is None
    True
    >>> refusal(SimpleNamespace(kind="image-classifier", task="classify"), "cells.zip")[:42]
    'cells.zip is an image classifier (one clas'
    >>> refusal(SimpleNamespace(kind="object-classifier"), "rbc.zip")[:42]
    'rbc.zip is an object classifier (one class'
    """
    kind, task = getattr(model, "kind", None), getattr(model, "task", None)
    if kind == "object-classifier":
        return (f"{name} is an object classifier (one class per object): apply it to a Labels layer with "
                "'classify objects', or to folders with `pixlearn predict MODEL IMAGES --labels DIR -o OUT`")
    if kind == "image-classifier":
        return (f"{name} is an image classifier (one class per image): the plugin applies pixel models only; "
                "classify images with `pixlearn predict MODEL IMAGES -o OUT` (a table of classes)")
    if task not in APPLICABLE_TASKS:
        return (f"{name} is a {kind} model for the task {task!r}: the plugin applies models of the tasks "
                f"{', '.join(APPLICABLE_TASKS)}")
    return None
