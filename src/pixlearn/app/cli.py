"""The ``pixlearn`` command: train, predict, evaluate, info, demo.

Each subcommand parses paths and options, calls one library function and prints a summary.
Every failure goes through one error path (:class:`_OneErrorPath`): bad input and misused
options end with one line ``error: FILE-OR-OPTION: PROBLEM`` on stderr and exit code 2; an
internal bug ends with one short line asking to report it, and exit code 1 (the traceback only
with ``--verbose``). Heavy imports (torch, scikit-learn) happen inside the commands so that
``--help`` is fast.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from pixlearn.app.export import export
from pixlearn.app.gui import gui
from pixlearn.app.options import (
    experiment_from_options,
    parse_ints,
    parse_memory_option,
    parse_spacing_option,
)
from pixlearn.app.options import parse_duration as parse_duration  # re-exported: it lived here
from pixlearn.errors import PixlearnError

logger = logging.getLogger("pixlearn")

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1


def _usage_message(exc: typer.TyperException) -> str:
    """``OPTION: PROBLEM`` of a usage error of the command line (one line)."""
    param = getattr(exc, "param", None)
    if isinstance(exc, typer.BadParameter) and type(exc).__name__ != "MissingParameter" \
            and param is not None and exc.message:
        name = param.get_error_hint().replace("'", "")
        return f"{name}: Invalid value: {exc.message}"
    return exc.format_message()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _OneErrorPath(TyperGroup):
    """The ``pixlearn`` group: every failure of every command ends here, written once.

    * :class:`~pixlearn.errors.PixlearnError` and other ``ValueError`` (invalid option values
      refused by configuration validation), click usage errors (unknown options, values of the
      wrong type or out of range, missing arguments): ``error: FILE-OR-OPTION: PROBLEM``, exit 2.
    * Anything else is a bug of pixlearn: one line naming the exception and asking to report it
      (with the traceback that ``--verbose`` prints), exit 1.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        verbose = "--verbose" in argv or "-v" in argv
        try:
            result = super().main(args=argv, prog_name=prog_name, complete_var=complete_var,
                                  standalone_mode=False, **extra)
        except typer.TyperException as exc:  # usage errors: unknown options, bad or missing values
            if type(exc).__name__ == "NoArgsIsHelpError":  # plain `pixlearn`: the help
                exc.show()  # type: ignore[attr-defined]
            else:
                typer.echo(f"error: {_one_line(_usage_message(exc))}", err=True)
            code = EXIT_BAD_INPUT
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            code = EXIT_INTERNAL
        except ValueError as exc:  # PixlearnError, and option values refused by config validation
            if verbose:
                traceback.print_exc()
            typer.echo(f"error: {_one_line(str(exc))}", err=True)
            code = EXIT_BAD_INPUT
        except Exception as exc:  # a bug of pixlearn, not of the input
            if verbose:
                traceback.print_exc()
            detail = _one_line(str(exc))[:200]
            hint = "please report it with the output of the same command run with --verbose" if not verbose \
                else "please report it with the traceback above"
            typer.echo(f"error: internal error ({type(exc).__name__}: {detail}); {hint}", err=True)
            code = EXIT_INTERNAL
        else:
            code = result if isinstance(result, int) else 0
        if not standalone_mode:
            return code
        sys.exit(code)


app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.split("\n")[0], cls=_OneErrorPath)


class Method(str, Enum):
    rf = "rf"
    svm = "svm"
    hgb = "hgb"
    unet = "unet"


class Task(str, Enum):
    semantic = "semantic"
    instances = "instances"
    restore = "restore"


class LabelKind(str, Enum):
    dense = "dense"
    scribbles = "scribbles"
    instances = "instances"


def _fail(message: str) -> PixlearnError:
    """The error to raise for a misused option: the one error path prints it, exit code 2."""
    return PixlearnError(message)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _set_threads(threads: int | None, seed: int | None = None) -> None:
    """Process-wide PyTorch settings: only the command line sets them, never the library."""
    if threads is None and seed is None:
        return
    try:
        import torch
    except ImportError:  # classical models need no torch
        return
    if threads is not None:
        torch.set_num_threads(threads)
    if seed is not None:
        torch.manual_seed(seed)


def _check_model_output(output: Path, *, overwrite: bool, data: Sequence[Path | None]) -> None:
    """Refuse a model output that is, or lies inside, a data folder, or that holds anything but a
    pixlearn model (replaced only with `overwrite`)."""
    from pixlearn.models.model_file import check_model_target

    target = output.resolve()
    for folder in data:
        if folder is None:
            continue
        if not folder.is_dir():  # the data's own problem first, as reading the pairs would say it
            raise PixlearnError("not a folder", folder)
        resolved = folder.resolve()
        if target == resolved or resolved in target.parents:
            raise PixlearnError(f"the model output is {'' if target == resolved else 'inside '}the data folder "
                                f"{folder}; choose another output", output)
    check_model_target(output, overwrite=overwrite)


@app.command()
def train(
    images: Annotated[Path, typer.Option(help="Folder of raw images.")],
    labels: Annotated[Path, typer.Option(help="Folder of annotations, matched to images by file name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model folder to write (or a .zip file).")],
    method: Annotated[Method, typer.Option(help="rf, svm, hgb (classical) or unet (network).")] = Method.rf,
    task: Annotated[Task, typer.Option(help="semantic | instances | restore (networks).")] = Task.semantic,
    label_kind: Annotated[
        LabelKind | None,
        typer.Option(help="dense: class per pixel 0..K-1; scribbles: 0 unlabelled, classes 1..K; instances: 0 background, 1..N objects. Default: dense, or instances for --task instances."),
    ] = None,
    axes: Annotated[str | None, typer.Option(help="Axes of the raw images, e.g. YX, ZYX, CYX (default: inferred).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML/JSON file with sections normalization, features, classifier, unet, train, tile (options given here override its values).")] = None,
    sigmas: Annotated[str | None, typer.Option(help="Feature scales, comma separated (classical).")] = None,
    n_estimators: Annotated[int | None, typer.Option(help="Trees of the random forest.")] = None,
    n_classes: Annotated[int | None, typer.Option(min=1, help="Number of classes; label values outside them are an error (default: from the labels).")] = None,
    spacing: Annotated[str | None, typer.Option(help="Voxel size z,y,x (or y,x) in any one unit, e.g. 50,4.6,4.6 for serial sections (classical; default: what the image files state, else isotropic). --sigmas are in pixels of the finest axis, divided per axis.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory the training may hold at its peak, e.g. 2GiB; it bounds feature blocks and training pixels (classical; default: a quarter of the RAM, at most what is available).")] = None,
    val_images: Annotated[Path | None, typer.Option(help="Validation images (networks; default: a split of the training pairs).")] = None,
    val_labels: Annotated[Path | None, typer.Option(help="Validation annotations.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Training epochs (networks).")] = None,
    time_limit: Annotated[str | None, typer.Option(help="Stop training after this long and keep the best model, e.g. 20m.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted network training from its last checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing pixlearn model at --output (never anything else).")] = False,
    seed: Annotated[int | None, typer.Option(min=0, help="Random seed (default: the config file's, else 0).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda when available).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for PyTorch (default: PyTorch's choice).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Train a model from pairs of raw images and annotations."""
    _setup_logging(verbose)
    from pixlearn.data.pairs import load_pairs

    # before anything is read or trained: no minutes of training lost to an output refused at the end
    _check_model_output(output, overwrite=overwrite, data=[images, labels, val_images, val_labels])
    experiment = experiment_from_options(config, method.value, sigmas=sigmas, n_estimators=n_estimators,
                                         epochs=epochs, time_limit=time_limit, seed=seed)
    voxel_size, budget = parse_spacing_option(spacing), parse_memory_option(memory)
    _set_threads(threads, seed=experiment.train.seed if method == Method.unet else (seed or 0))
    if method != Method.unet and task != Task.semantic:
        raise _fail(f"--method {method.value} does semantic segmentation only; use --method unet for --task {task.value}")
    kind = label_kind.value if label_kind else ("instances" if task == Task.instances else "dense")
    if task == Task.restore:
        kind = "restore"
    pairs = load_pairs(images, labels, label_kind=kind, axes=axes)
    if method == Method.unet:
        from pixlearn.app.jobs import train_network_model

        if spacing is not None or memory is not None:
            logger.warning("--spacing and --memory apply to classical methods only; ignored for unet")
        from pixlearn.nets.fit import FitOptions

        val_pairs = load_pairs(val_images, val_labels, label_kind=kind, axes=axes) if val_images and val_labels else None
        options = FitOptions(checkpoint_dir=output.with_name(output.name + ".checkpoints"), resume=resume,
                             progress=True, device=device)
        model = train_network_model(pairs, task=task.value, label_kind=kind, experiment=experiment,
                                    val_pairs=val_pairs, options=options)
    else:
        from pixlearn.app.jobs import train_classical_model

        model = train_classical_model(pairs, label_kind=kind, experiment=experiment, n_classes=n_classes,
                                      spacing=voxel_size, memory_budget=budget)
    from pixlearn.app.jobs import resolved_experiment
    from pixlearn.models.model_file import save_model

    save_model(model, output, experiment=resolved_experiment(experiment, model), overwrite=overwrite)
    typer.echo(f"trained {model.kind} model ({model.task}, {model.ndim}D, {model.n_channels} channel(s)) on {len(pairs)} image(s) -> {output}")


@app.command()
def predict(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="Model folder or .zip file.")],
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT...", help="Image files, folders or glob patterns.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
    probabilities: Annotated[bool, typer.Option(help="Also write the per-class probability maps / raw outputs.")] = False,
    axes: Annotated[str | None, typer.Option(help="Axes of the inputs (default: inferred).")] = None,
    output_format: Annotated[str, typer.Option("--format", help="tif, zarr, ome-zarr or ome-tif (zarr, ome-zarr: written tile by tile; ome-*: with physical pixel sizes, ome-zarr with a pyramid and labels).")] = "tif",
    objects: Annotated[str | None, typer.Option(help="Instance models: also write objects/<name>.geojson (QuPath) and/or .csv (measurements): geojson, csv or geojson,csv.")] = None,
    tile: Annotated[str | None, typer.Option(help="Tile shape, e.g. 512,512 (default: from --memory).")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory the prediction may hold at its peak, e.g. 2GiB; tiles get what the model and the outputs leave of it (default: a quarter of the RAM, at most what is available).")] = None,
    tta: Annotated[bool, typer.Option(help="Test-time augmentation: average over flips and 90-degree rotations.")] = False,
    dask: Annotated[str | None, typer.Option(help="Dask scheduler address (tcp://host:8786) or local:N.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, ... (networks).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for PyTorch (default: PyTorch's choice).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Redo outputs that are already finished (never a file pixlearn did not write).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Apply a trained model to images of any size."""
    _setup_logging(verbose)
    _set_threads(threads)
    from pixlearn.app.jobs import warn_about_inputs
    from pixlearn.data.folders import list_images
    from pixlearn.models.model_file import load_model
    from pixlearn.predict import PredictOptions, predict_many
    from pixlearn.predict.batch import OBJECT_FORMATS, OUTPUT_FORMATS
    from pixlearn.predict.tiling import TileConfig

    if output_format not in OUTPUT_FORMATS:
        raise _fail(f"--format {output_format!r}: use {', '.join(OUTPUT_FORMATS)}")
    object_kinds = tuple(k.strip() for k in objects.split(",") if k.strip()) if objects else ()
    if any(k not in OBJECT_FORMATS for k in object_kinds):
        raise _fail(f"--objects {objects!r}: use geojson, csv or geojson,csv")
    budget = parse_memory_option(memory)
    paths = list_images(inputs, exclude=[output])  # never its own outputs as inputs
    model = load_model(model_path, device=device)
    tile_cfg = TileConfig(tile_shape=parse_ints(tile, "--tile") if tile else None,
                          batch_size=1 if model.kind == "classical" else TileConfig().batch_size)
    warn_about_inputs(model, paths, axes)
    options = PredictOptions(tile=tile_cfg, axes=axes, output_format=output_format, probabilities=probabilities,
                             tta=tta, objects=object_kinds, overwrite=overwrite, memory_budget=budget)
    manifest = predict_many(model, paths, output, options, dask_address=dask, model_name=str(model_path),
                            progress=True)
    typer.echo(f"predicted {len(paths)} image(s) -> {output} (manifest: {manifest})")


@app.command()
def evaluate(
    pred: Annotated[Path, typer.Option(help="Folder of predictions.")],
    truth: Annotated[Path, typer.Option(help="Folder of ground truth, matched by file name.")],
    kind: Annotated[str, typer.Option(help="semantic, instances or restore.")] = "semantic",
    n_classes: Annotated[int | None, typer.Option(min=1, help="Number of classes (semantic; default: from the data).")] = None,
    scale_invariant: Annotated[bool, typer.Option(help="Restore: put each prediction on its truth's normalised scale before PSNR/SSIM.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder for metrics.json / metrics.csv (default: --pred).")] = None,
) -> None:
    """Score predictions against ground truth (JSON and CSV reports)."""
    from pixlearn.metrics.report import evaluate_folders, write_report

    if kind not in ("semantic", "instances", "restore"):
        raise _fail(f"--kind {kind!r}: use semantic, instances or restore")
    result = evaluate_folders(pred, truth, kind=kind, n_classes=n_classes, scale_invariant=scale_invariant)
    written = write_report(result, output or pred)
    typer.echo(json.dumps(result["aggregate"], indent=2))
    typer.echo(f"report: {', '.join(str(p) for p in written.values())}")


@app.command()
def info(model_path: Annotated[Path, typer.Argument(metavar="MODEL")]) -> None:
    """Show what a model file holds: kind, task, inputs, classes, settings, training history."""
    from pixlearn.models.model_file import describe

    header = describe(model_path)
    typer.echo(json.dumps(header, indent=2))


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the demo data, model and results.")] = Path("demo_output"),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Generate synthetic nuclei, train a random forest from scribbles, predict, evaluate, plot."""
    _setup_logging(verbose)
    from pixlearn.app.demo import run_demo

    summary = run_demo(output, seed=seed)
    typer.echo(summary)


@app.command()
def doctor(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Model files or folders, image files or folders of images.")],
    axes: Annotated[str | None, typer.Option(help="Axes of the images (default: inferred).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Check model files and images without running anything; say what would be refused.

    Exit code 0 when everything would be accepted, 2 when anything would be refused.
    """
    _setup_logging(verbose)
    from pixlearn.app.doctor import diagnose

    report = diagnose(paths, axes=axes)
    for line in report.lines():
        typer.echo(line)
    if not report.ok:
        raise typer.Exit(EXIT_BAD_INPUT)


app.command(name="export", help="Export a model for other tools: a bioimage.io package (networks) or ONNX (forests).")(export)
app.command(name="gui", help="Open napari with the pixlearn widget docked and IMAGES loaded (needs the gui extra).")(gui)


def main() -> None:  # pragma: no cover
    app()
