"""The ``pixlearn export`` command: a model file as a bioimage.io package or as ONNX.

A typer-compatible function; :mod:`pixlearn.app.cli` registers it behind its error guard
(``app.command()(_guard(export))``), which turns the :class:`~pixlearn.errors.PixlearnError`
raised here into one ``error: FILE: PROBLEM`` line and exit code 2. Heavy imports (torch,
bioimageio, skl2onnx) happen inside.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from pixlearn.errors import PixlearnError


class ExportFormat(str, Enum):
    bioimageio = "bioimageio"
    onnx = "onnx"


def _needs_exchange(path: Path) -> PixlearnError:
    return PixlearnError("exporting needs the exchange extra: pip install 'pixlearn[exchange]'", path)


def export(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="Model folder or .zip file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Package (.zip) or .onnx file to write.")],
    format: Annotated[ExportFormat, typer.Option("--format", help="bioimageio (networks) or onnx (networks: the weights; classical: the random forest on feature stacks).")] = ExportFormat.bioimageio,
    author: Annotated[list[str] | None, typer.Option("--author", help="Author name (repeat for several); bioimageio needs one.")] = None,
    name: Annotated[str | None, typer.Option(help="Package name (default: from task and architecture).")] = None,
    license: Annotated[str, typer.Option(help="SPDX licence of the weights.")] = "CC-BY-4.0",
    training_data: Annotated[str | None, typer.Option(help="What the model was trained on (for the package README).")] = None,
) -> None:
    """Export a model for other tools: a bioimage.io package (deepImageJ, ilastik, QuPath, napari) or ONNX."""
    from pixlearn.models.model_file import load_model

    if not model_path.exists():
        raise PixlearnError("no such model", model_path)
    model = load_model(model_path, device="cpu")
    try:
        if format is ExportFormat.bioimageio:
            from pixlearn.models.export_bioimageio import export_bioimageio

            path = export_bioimageio(model, output, authors=list(author or []), name=name, license=license,
                                     training_data=training_data)
        elif model.kind == "classical":
            from pixlearn.models.onnx_classical import export_onnx_classical

            path = export_onnx_classical(model, output)
        else:
            from pixlearn.models.export_bioimageio import onnx_for_model

            path = onnx_for_model(model, output)
    except ModuleNotFoundError as exc:
        raise _needs_exchange(model_path) from exc
    except PixlearnError as exc:
        raise PixlearnError(exc.message, model_path) from None
    typer.echo(f"wrote {path}")
