"""Image files opened for prediction: lazily, in the canonical layout, grey for grey models.

Reads of a lazily opened file happen tile by tile, long after it was opened; a corrupt file
(a TIFF whose header lies about its strips) fails only then. :class:`CheckedReads` turns such
failures into a :class:`~pixlearn.errors.PixlearnError` naming the file.

Writing the outputs of a file (atomically) is :func:`pixlearn.predict.file_outputs.predict_file`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pixlearn.data.axes import canonical_view, grey_view
from pixlearn.data.images import open_image
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)


class CheckedReads:
    """A lazy image whose reads raise :class:`PixlearnError` naming its file, whatever the reader
    raises (tifffile, Zarr, a memory map of a truncated file).

    Parameters
    ----------
    image : array-like
        Supports ``shape``, ``dtype``, ``ndim`` and slicing.
    path : path-like
        Named in the errors.

    Examples
    --------
    >>> import numpy as np
    >>> view = CheckedReads(np.zeros((4, 4, 1)), "a.tif")
    >>> view.shape, view[0:2, 0:1].shape
    ((4, 4, 1), (2, 1, 1))
    """

    def __init__(self, image: Any, path: Any) -> None:
        self.image = image
        self.path = path
        self.shape = tuple(int(s) for s in image.shape)
        self.dtype = image.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> Any:
        try:
            return self.image[key]
        except (PixlearnError, MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:  # corrupt files raise a zoo of exception types
            raise PixlearnError(f"cannot read image data ({type(exc).__name__}: {exc})", self.path) from exc

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        return np.asarray(self[...], dtype=dtype)


def checked_reads(image: Any, path: Any) -> CheckedReads:
    """`image` wrapped in :class:`CheckedReads` (once)."""
    return image if isinstance(image, CheckedReads) else CheckedReads(image, path)


def canonical_input(path: Path, axes: str | None, n_channels: int | None = None) -> CheckedReads:
    """Open `path` lazily in the canonical layout; a colour image for a grey model (as models
    trained on a grey/colour mix such as DSB2018 are) is read as the mean of its colours.

    Reads of the returned view raise :class:`PixlearnError` naming `path` (:class:`CheckedReads`).
    """
    array, found = open_image(path, axes=axes)
    try:
        view = canonical_view(array, found)
    except ValueError as exc:
        raise PixlearnError(str(exc), path) from None
    if n_channels == 1 and view.shape[-1] in (3, 4) and view.ndim == 3:
        logger.info("%s: colour image for a grey model; using the mean of its colours", path)
        view = grey_view(view)
    return checked_reads(view, path)

