"""The models room: the contract every trained model meets, and model files.

:class:`~pixlearn.models.protocol.PixelModel` is the whole interface :mod:`pixlearn.predict`
uses; :mod:`~pixlearn.models.model_file` saves, loads and describes model folders or ``.zip``
files without executing anything from them (the zip checks in
:mod:`~pixlearn.models.archive`, every loaded array checked by :mod:`~pixlearn.models.validate`,
files of schema 1 read by :mod:`~pixlearn.models.skops_legacy`). The room imports :mod:`pixlearn.data`,
:mod:`pixlearn.config` and :mod:`pixlearn.errors` at import time, and :mod:`pixlearn.classical`
or :mod:`pixlearn.nets` only inside the loader of that kind, so loading a classical model never
imports torch.
"""

from __future__ import annotations

from pixlearn.models.model_file import describe, load_model, read_header, save_model
from pixlearn.models.protocol import MODEL_TILE_MODES, TASKS, PixelModel

__all__ = [
    "MODEL_TILE_MODES",
    "TASKS",
    "PixelModel",
    "describe",
    "load_model",
    "read_header",
    "save_model",
]
