"""``pixlearn gui [IMAGE...]``: open napari with the pixlearn widget docked and the images loaded.

A typer-compatible function; ``app/cli.py`` registers it (``app.command()(gui)``). napari, Qt
and torch are imported inside the call, torch first (importing it after Qt can clash over the
OpenMP runtime), so ``pixlearn --help`` stays fast and works without the ``gui`` extra.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

logger = logging.getLogger(__name__)

WIDGET_NAME = "Pixel classification"


def open_viewer(images: list[Path] | None = None, *, show: bool = True) -> tuple[Any, Any]:
    """A napari viewer with the images opened by pixlearn's reader and the widget docked.

    Parameters
    ----------
    images : list of Path, optional
        Image files (or pixlearn model files) to open.
    show : bool
        Show the window (tests pass ``False``).

    Returns
    -------
    viewer, widget
    """
    try:
        import torch  # noqa: F401 - before Qt
    except ImportError:
        pass
    import napari

    viewer = napari.Viewer(show=show)
    _, widget = viewer.window.add_plugin_dock_widget("pixlearn", WIDGET_NAME)
    models = []
    for path in images or []:
        from pixlearn.app.napari.io import is_model_file

        if is_model_file(path):
            models.append(Path(path))
        else:
            viewer.open(str(path), plugin="pixlearn")
    for path in models:  # after the images, so that the model has something to apply to
        widget.apply_model_file(path)
    return viewer, widget


def gui(
    images: Annotated[
        list[Path] | None, typer.Argument(help="Images (TIFF, PNG, .npy, Zarr) or pixlearn model files to open.")
    ] = None,
) -> None:
    """Open napari with the pixlearn widget: paint, preview, train a U-Net, apply, save."""
    missing = [str(p) for p in images or [] if not Path(p).exists()]
    if missing:
        typer.echo(f"no such file: {', '.join(missing)}", err=True)
        raise typer.Exit(1)
    try:
        import napari  # noqa: F401
    except ImportError:
        typer.echo("the GUI needs the gui extra: pip install 'pixlearn[gui]'", err=True)
        raise typer.Exit(1) from None
    open_viewer(list(images or []))
    import napari

    napari.run()
