"""The built-in models: found in the package's ``weights`` folder, loaded like any model file.

Each built-in model is two files shipped inside the package (``pixlearn/zoo/weights``):
``<name>.zip``, an ordinary pixlearn model file, and ``<name>.card.json``, its model card (what it
is for, what it was trained on, the licence, how it was trained and its scores). They are found
with :mod:`importlib.resources` on every call; nothing is cached and nothing is read at import.

A model argument names a built-in model only when no file or folder of that name exists: a path
that exists always wins. Loading goes through the one safe loader of user files,
:func:`pixlearn.models.model_file.load_model`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.resources
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pixlearn.errors import ModelFileError, PixlearnError

if TYPE_CHECKING:  # importlib.resources.abc is new in Python 3.11
    from importlib.resources.abc import Traversable

WEIGHTS_PACKAGE = "pixlearn.zoo"
WEIGHTS_FOLDER = "weights"
CARD_SUFFIX = ".card.json"
MODEL_SUFFIX = ".zip"
#: Fields every model card has (the card may hold more: command, machine, date, epochs, ...).
CARD_FIELDS: tuple[str, ...] = ("name", "task", "summary", "trained_on", "licence", "input", "scores")
_NAME = re.compile(r"[a-z][a-z0-9_-]*")


@dataclasses.dataclass(frozen=True)
class BuiltinModel:
    """One built-in model: its name, its model card and its model file in the package.

    Parameters
    ----------
    name : str
    card : mapping
        The model card as shipped (read-only), with at least the fields of :data:`CARD_FIELDS`.
    weights : importlib.resources.abc.Traversable
        The model file (``<name>.zip``) inside the package.
    """

    name: str
    card: Mapping[str, Any] = dataclasses.field(repr=False)
    weights: Traversable = dataclasses.field(repr=False)

    @property
    def task(self) -> str:
        """``semantic``, ``instances`` or ``restore``."""
        return str(self.card["task"])

    @property
    def size_bytes(self) -> int:
        """Size of the model file."""
        with importlib.resources.as_file(self.weights) as path:
            return path.stat().st_size

    def as_file(self) -> contextlib.AbstractContextManager[Path]:
        """A context manager giving the model file as a path on disk (see :func:`importlib.resources.as_file`)."""
        return importlib.resources.as_file(self.weights)


def _weights_folder() -> Traversable:
    return importlib.resources.files(WEIGHTS_PACKAGE).joinpath(WEIGHTS_FOLDER)


def _read_card(entry: Traversable, name: str) -> Mapping[str, Any]:
    try:
        card = json.loads(entry.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"model card of the built-in model {name!r} cannot be read ({exc})") from None
    missing = [field for field in CARD_FIELDS if not isinstance(card, dict) or field not in card]
    if missing:
        raise ModelFileError(f"model card of the built-in model {name!r} lacks {', '.join(missing)}")
    if card["name"] != name:
        raise ModelFileError(f"model card {name}{CARD_SUFFIX} names another model ({card['name']!r})")
    return MappingProxyType(card)


def _entries() -> Iterator[tuple[str, Traversable, Traversable]]:
    folder = _weights_folder()
    if not folder.is_dir():
        return
    files = {entry.name: entry for entry in folder.iterdir()}
    for filename in sorted(files):
        name = filename.removesuffix(CARD_SUFFIX)
        if filename.endswith(CARD_SUFFIX) and name + MODEL_SUFFIX in files:
            yield name, files[filename], files[name + MODEL_SUFFIX]


def builtin_models() -> tuple[BuiltinModel, ...]:
    """Every built-in model, in name order.

    Returns
    -------
    models : tuple of BuiltinModel
        A model is listed when both its model file and its model card are in the package.

    Raises
    ------
    ModelFileError
        A shipped model card that cannot be read or lacks a field of :data:`CARD_FIELDS`.

    Examples
    --------
    >>> [m.name for m in builtin_models()]
    ['nuclei']
    """
    return tuple(BuiltinModel(name, _read_card(card, name), weights) for name, card, weights in _entries())


def builtin_names() -> tuple[str, ...]:
    """The names of the built-in models (without reading their cards)."""
    return tuple(name for name, _, _ in _entries())


def builtin_model(name: str) -> BuiltinModel:
    """The built-in model called `name`.

    Raises
    ------
    PixlearnError
        No built-in model has that name (the message lists those there are).
    """
    for found, card, weights in _entries():
        if found == name:
            return BuiltinModel(name, _read_card(card, name), weights)
    raise PixlearnError(f"no built-in model {name!r}; built-in models: {', '.join(builtin_names()) or 'none'}")


def find_builtin(source: str | os.PathLike[str]) -> BuiltinModel | None:
    """The built-in model `source` names, or ``None`` when it is a path (or names none).

    `source` names a built-in model when it is a plain name (lower-case letters, digits, ``_``
    and ``-``, no folder and no suffix), no file or folder of that name exists, and a built-in
    model has it.

    Examples
    --------
    >>> find_builtin("nuclei").task, find_builtin("no-such-model"), find_builtin("models/nuclei.zip")
    ('instances', None, None)
    """
    text = os.fspath(source)
    if not _NAME.fullmatch(text) or os.path.lexists(text) or text not in builtin_names():
        return None
    return builtin_model(text)


@contextlib.contextmanager
def model_source(source: str | os.PathLike[str]) -> Iterator[tuple[Path, BuiltinModel | None]]:
    """The model file or folder `source` stands for, and the built-in model it names.

    Parameters
    ----------
    source : str or path-like
        Model folder, ``.zip`` file, or the name of a built-in model (:func:`find_builtin`).

    Yields
    ------
    path : Path
        `source` itself, or the built-in model's file on disk (valid inside the ``with`` block).
    builtin : BuiltinModel or None
        ``None`` for a path.

    Raises
    ------
    ModelFileError
        A plain name that is neither a file or folder nor a built-in model.

    Examples
    --------
    >>> with model_source("nuclei") as (path, builtin):
    ...     path.name, builtin.name
    ('nuclei.zip', 'nuclei')
    """
    builtin = find_builtin(source)
    if builtin is not None:
        with builtin.as_file() as path:
            yield path, builtin
        return
    if _NAME.fullmatch(os.fspath(source)) and not os.path.lexists(source):
        names = ", ".join(builtin_names()) or "none"
        raise ModelFileError(f"no such model file or folder, and no built-in model of that name (built-in: "
                             f"{names}; pixlearn models lists them)", source)
    yield Path(source), None


def load_model(source: str | os.PathLike[str], *, device: Any = None) -> Any:
    """Load a model file or folder, or a built-in model by name.

    A path that exists is always loaded as the file or folder it is; otherwise a plain name is
    looked up among the built-in models (:func:`builtin_models`). Both load through
    :func:`pixlearn.models.model_file.load_model`, which executes nothing from the file.

    Parameters
    ----------
    source : str or path-like
        Model folder, ``.zip`` file, or the name of a built-in model (e.g. ``"nuclei"``).
    device : str or torch.device, optional
        Where a network's weights go; default CUDA when available, else CPU.

    Returns
    -------
    model : PixelModel

    Raises
    ------
    ModelFileError
        Neither a model file nor a built-in name, or a malformed file.

    Examples
    --------
    >>> model = load_model("nuclei")  # doctest: +SKIP
    >>> model.task, model.n_channels  # doctest: +SKIP
    ('instances', 1)
    """
    from pixlearn.models import model_file

    with model_source(source) as (path, _):
        return model_file.load_model(path, device=device)


def describe(source: str | os.PathLike[str]) -> dict[str, Any]:
    """What a model file holds (:func:`pixlearn.models.model_file.describe`); for a built-in model
    also its name (``"builtin"``) and model card (``"model_card"``), first.

    Parameters
    ----------
    source : str or path-like
        Model folder, ``.zip`` file, or the name of a built-in model.

    Returns
    -------
    description : dict
        JSON-safe.

    Examples
    --------
    >>> description = describe("nuclei")
    >>> description["model_card"]["task"], description["kind"]
    ('instances', 'network')
    """
    from pixlearn.models import model_file

    with model_source(source) as (path, builtin):
        header = model_file.describe(path)
        return header if builtin is None else {"builtin": builtin.name, "model_card": dict(builtin.card), **header}


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
