"""Exception types that carry the file and the problem, for clear command-line errors."""

from __future__ import annotations

import os


class PixlearnError(ValueError):
    """Bad input: names the file (when there is one) and what is wrong with it.

    Parameters
    ----------
    message : str
        What is wrong.
    path : str or os.PathLike, optional
        The file or folder the problem was found in.

    Examples
    --------
    >>> str(PixlearnError("contains NaN pixels", path="a.tif"))
    'a.tif: contains NaN pixels'
    """

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        self.message = message
        self.path = None if path is None else os.fspath(path)
        super().__init__(message if self.path is None else f"{self.path}: {message}")


class ModelFileError(PixlearnError):
    """A model file that is malformed, from an unknown schema, or holds untrusted content."""
