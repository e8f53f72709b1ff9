"""The model zoo: built-in pretrained models shipped inside the package, with their model cards.

:mod:`~pixlearn.zoo.registry` finds them (``pixlearn/zoo/weights/<name>.zip``, an ordinary model
file, and ``<name>.card.json``, its card) with :mod:`importlib.resources`, and resolves a model
argument: a file or folder that exists always wins, otherwise a plain name such as ``"nuclei"``
names a built-in model. Built-in models load through the same safe loader as user files
(:func:`pixlearn.models.model_file.load_model`). The room imports :mod:`pixlearn.errors` at
import time and :mod:`pixlearn.models` only when loading; it never imports torch itself.
"""

from __future__ import annotations

from pixlearn.zoo.registry import (
    CARD_FIELDS,
    BuiltinModel,
    builtin_model,
    builtin_models,
    builtin_names,
    describe,
    find_builtin,
    load_model,
    model_source,
)

__all__ = [
    "CARD_FIELDS",
    "BuiltinModel",
    "builtin_model",
    "builtin_models",
    "builtin_names",
    "describe",
    "find_builtin",
    "load_model",
    "model_source",
]
