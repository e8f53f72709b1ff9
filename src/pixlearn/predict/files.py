"""Image files opened for prediction: lazily, in the canonical layout, grey for grey models.

Writing the outputs of a file (atomically) is :func:`pixlearn.predict._machinery.predict_file`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pixlearn.data.axes import canonical_view, grey_view
from pixlearn.data.images import open_image
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)


def canonical_input(path: Path, axes: str | None, n_channels: int | None = None) -> Any:
    """Open `path` lazily in the canonical layout; a colour image for a grey model (as models
    trained on a grey/colour mix such as DSB2018 are) is read as the mean of its colours."""
    array, found = open_image(path, axes=axes)
    try:
        view = canonical_view(array, found)
    except ValueError as exc:
        raise PixlearnError(str(exc), path) from None
    if n_channels == 1 and view.shape[-1] in (3, 4) and view.ndim == 3:
        logger.info("%s: colour image for a grey model; using the mean of its colours", path)
        return grey_view(view)
    return view

