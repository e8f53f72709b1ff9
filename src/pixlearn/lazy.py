"""Lazy public names for a package: each imported from the module that owns it, on first use.

The rooms' ``__init__`` modules list their public names with the module that defines each; the
functions made here are the package's PEP 562 ``__getattr__`` and ``__dir__``, so importing a
package stays cheap (no scikit-learn, no torch) until a name is used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for `package`, whose public names live in `homes`.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    homes : mapping of str to str
        Public name -> the module that defines it: absolute (``"pixlearn.nets.unet"``) or
        relative to the package (``"unet"``).

    Returns
    -------
    getattr, dir : callable
        Assign them to the package's ``__getattr__`` and ``__dir__``.

    Examples
    --------
    >>> get, names = lazy_exports("pixlearn", {"TileConfig": "pixlearn.predict.tiling"})
    >>> get("TileConfig").__name__, "TileConfig" in names(), "__version__" in names()
    ('TileConfig', True, True)
    """
    modules = {name: module if module.startswith("pixlearn") else f"{package}.{module}"
               for name, module in homes.items()}

    def getattr_(name: str) -> Any:
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(modules[name]), name)

    def dir_() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(modules))

    return getattr_, dir_
