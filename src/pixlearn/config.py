"""Frozen configuration dataclasses: shared (de)serialisation to dicts, JSON and YAML.

Each stage defines its own frozen dataclass next to the code it configures (``FeatureConfig`` in
:mod:`pixlearn.classical.features`, ``ClassifierConfig`` in :mod:`pixlearn.classical.config`,
``UNetConfig``/``TrainConfig`` in :mod:`pixlearn.nets.config`, ...). They inherit :class:`Config`,
which gives them a strict ``from_dict`` (unknown keys and values of the wrong type raise),
``to_dict``, and JSON/YAML round trips. Validation happens in each class's ``__post_init__``.
The sections together form :class:`pixlearn.experiment.ExperimentConfig` (a module of its own:
this one imports no other pixlearn room).
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from typing_extensions import Self

C = TypeVar("C", bound="Config")


def _to_plain(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def _check_scalar(tp: Any, value: Any) -> Any:
    """`value` if it is of the scalar type `tp` (an int is a float too), else ``TypeError``."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if tp is float and (is_int or isinstance(value, float)):
        return float(value)
    if (tp is int and is_int) or (tp is bool and isinstance(value, bool)) or (tp is str and isinstance(value, str)):
        return value
    raise TypeError(f"expected {tp.__name__}, got {type(value).__name__} {value!r}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _from_plain(tp: Any, value: Any) -> Any:
    """Convert a JSON value to the annotated type ``tp``; ``TypeError`` when it is of another type.

    Handles nested :class:`Config` classes, tuples, ``X | None`` unions and the scalars
    ``int``, ``float`` (an int is accepted and converted), ``bool`` and ``str``; other
    annotations pass the value through.
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            if len(options) < len(typing.get_args(tp)):
                return None
            raise TypeError(f"expected {' or '.join(_type_name(a) for a in options)}, got None")
        if len(options) == 1:  # X | None: X's own message is the clearest
            return _from_plain(options[0], value)
        for arg in options:
            try:
                return _from_plain(arg, value)
            except (TypeError, ValueError):
                continue
        names = " or ".join(_type_name(a) for a in typing.get_args(tp))
        raise TypeError(f"expected {names}, got {type(value).__name__} {value!r}")
    if isinstance(tp, type) and issubclass(tp, Config):
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return tp.from_dict(value)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {type(value).__name__} {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_plain(args[0], v) for v in value)
        if len(args) != len(value):
            raise TypeError(f"expected a list of {len(args)} values, got {len(value)}")
        return tuple(_from_plain(a, v) for a, v in zip(args, value))
    if tp in (int, float, bool, str):
        return _check_scalar(tp, value)
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class of every pixlearn configuration dataclass."""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict of all fields (nested configs become dicts, tuples lists)."""
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build from a dict; unknown keys and wrong value types raise, missing keys take defaults.

        Parameters
        ----------
        data : dict
            As written by :meth:`to_dict`.

        Returns
        -------
        config : Config
            A validated instance.

        Raises
        ------
        ValueError
            On unknown keys, values of the wrong type, or values that fail validation; the
            message names the key (``Outer.section: Inner.key: ...`` for nested configs).
        """
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}; known: {sorted(names)}")
        kwargs = {}
        for key, value in data.items():
            try:
                kwargs[key] = _from_plain(hints[key], value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{cls.__name__}.{key}: {exc}") from None
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Self:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to ``.json`` or ``.yaml``/``.yml`` (by suffix)."""
        path = Path(path)
        text = (
            yaml.safe_dump(self.to_dict(), sort_keys=False)
            if path.suffix in (".yaml", ".yml")
            else json.dumps(self.to_dict(), indent=2)
        )
        path.write_text(text)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read from ``.json`` or ``.yaml``/``.yml`` (by suffix)."""
        path = Path(path)
        text = path.read_text()
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        return cls.from_dict(data or {})
