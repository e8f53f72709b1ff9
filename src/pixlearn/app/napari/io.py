"""The plugin's reader (pixlearn model files and the images pixlearn reads) and sample data."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.app.napari.layers import AXES_KEY
from pixlearn.data.formats import file_stem, is_image_file
from pixlearn.data.images import open_image
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)

LayerData = list[tuple[Any, ...]]
WIDGET_NAME = "Pixel classification"


def is_model_file(path: str | Path) -> bool:
    """Whether `path` is a pixlearn model (folder or ``.zip`` with a valid ``model.json``)."""
    from pixlearn.models.model_file import read_header

    path = Path(path)
    if not (path.suffix.lower() == ".zip" or (path.is_dir() and (path / "model.json").exists())):
        return False
    try:
        read_header(path)
    except (PixlearnError, OSError):
        return False
    return True


def get_reader(path: str | list[str]) -> Callable[[Any], LayerData] | None:
    """npe2 reader hook: a reader for pixlearn model files and images, or ``None``."""
    first = path[0] if isinstance(path, list) else path
    if is_model_file(first):
        return read_model
    if is_image_file(first) or (Path(first).is_dir() and str(first).lower().endswith(".zarr")):
        return read_images
    return None


def image_layer_data(path: str | Path) -> tuple[Any, dict[str, Any], str]:
    """One image file as a napari layer-data tuple, channel axis first (see :mod:`.layers`).

    NumPy arrays stay arrays; lazy ones (Zarr, memory maps) become Dask arrays so that napari
    reads only what it shows.
    """
    array, axes = open_image(path)
    drop = [i for i, a in enumerate(axes) if a in "TQ" and array.shape[i] == 1]
    kept = "".join(a for i, a in enumerate(axes) if i not in drop)
    if set(kept) - set("CZYX"):
        raise PixlearnError(f"axes {axes!r}: only C, Z, Y, X (and length-1 T) are supported", path)
    target = ("C" if "C" in kept else "") + ("Z" if "Z" in kept else "") + "YX"
    if not isinstance(array, np.ndarray):
        import dask.array as da

        array = da.from_array(array, chunks="auto") if not hasattr(array, "chunks") else da.from_zarr(array)
    index = tuple(0 if i in drop else slice(None) for i in range(len(axes)))
    data = array[index]
    data = data.transpose([kept.index(a) for a in target])
    # rgb=False: the channels stay a slider axis (pixlearn's features take every channel)
    meta = {"name": file_stem(path), "rgb": False, "metadata": {AXES_KEY: target, "path": str(path)}}
    return data, meta, "image"


def read_images(path: str | list[str]) -> LayerData:
    """Read one or more images (see :func:`image_layer_data`)."""
    paths = path if isinstance(path, list) else [path]
    return [image_layer_data(p) for p in paths]


def read_model(path: str | list[str]) -> LayerData:
    """Open a model file: the dock widget of the current viewer takes it (no layer is added)."""
    import napari

    from pixlearn.models.model_file import load_model

    first = path[0] if isinstance(path, list) else path
    model = load_model(first)
    viewer = napari.current_viewer()
    if viewer is None:
        raise PixlearnError("no napari viewer to open the model in", first)
    _, widget = viewer.window.add_plugin_dock_widget("pixlearn", WIDGET_NAME)
    widget.set_model(model, Path(first))
    return [(None,)]


def _sample(shape: tuple[int, ...], seed: int) -> LayerData:
    from pixlearn.synthetic import SyntheticConfig, make_nuclei

    image, labels = make_nuclei(SyntheticConfig(shape=shape), np.random.default_rng(seed))
    axes = "ZYX" if len(shape) == 3 else "YX"
    return [
        (image, {"name": "synthetic nuclei", "metadata": {AXES_KEY: axes}}, "image"),
        (labels, {"name": "nuclei (truth)", "visible": False}, "labels"),
    ]


def sample_nuclei() -> LayerData:
    """Sample data: a 512x512 synthetic nuclei image and its exact instance labels."""
    return _sample((512, 512), 0)


def sample_nuclei_3d() -> LayerData:
    """Sample data: a 32x128x128 synthetic nuclei volume and its exact instance labels."""
    return _sample((32, 128, 128), 0)
