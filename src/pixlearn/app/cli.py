"""The ``pixlearn`` command: train, predict, evaluate, info, models, demo.

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
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from pixlearn.app.builtin import models
from pixlearn.app.export import export
from pixlearn.app.gui import gui
from pixlearn.app.options import (
    OBJECT_DIAMETER_HELP,
    PRECISION_HELP,
    LabelKind,
    Method,
    Precision,
    Task,
    check_model_output,
    experiment_from_options,
    parse_diameter,
    parse_ints,
    parse_memory_option,
    parse_spacing_option,
    with_object_diameter,
)
from pixlearn.app.options import parse_duration as parse_duration  # re-exported (tests, scripts)
from pixlearn.errors import PixlearnError

if TYPE_CHECKING:  # importing it costs a second: only the commands that need it do
    from pixlearn.experiment import ExperimentConfig

logger = logging.getLogger("pixlearn")

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
SEGMENT_HELP = ("--task objects / object classifiers: make the instance labels with this model instead of --labels: "
                "a pixlearn instance model file or a built-in name (nuclei).")


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


@app.command()
def train(
    images: Annotated[Path, typer.Option(help="Folder of raw images.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model folder to write (or a .zip file).")],
    labels: Annotated[Path | None, typer.Option(help="Folder of annotations, matched to images by file name; --task classify: a labels table (CSV name,class), else --images holds one subfolder per class; --task objects: the instance label images.")] = None,
    method: Annotated[Method | None, typer.Option(help="rf, svm, hgb (classical), unet (network) or cnn (image classifier). Default: rf, or unet with --init.")] = None,
    task: Annotated[Task | None, typer.Option(help="semantic | instances | restore (networks) | classify (--method cnn: one class per image) | objects (rf, svm, hgb: one class per segmented object). Default: semantic, or the --init model's.")] = None,
    classes: Annotated[Path | None, typer.Option(help="--task objects: a table (CSV image,object_id,class) of annotated objects.")] = None,
    points: Annotated[Path | None, typer.Option(help="--task objects: a table (CSV image,y,x[,z],class) of points, each on an annotated object.")] = None,
    segment: Annotated[str | None, typer.Option(metavar="MODEL", help=SEGMENT_HELP)] = None,
    init: Annotated[str | None, typer.Option(metavar="MODEL", help="Fine-tune: start the network from this model, a model file or folder or a built-in name (pixlearn models; a path that exists wins). Keeps its architecture, task and normalisation (unless --config has a normalization section); trains at lr x train.init_lr_factor (default 1) after a short warm-up and keeps the last epoch's weights (train.keep); instance thresholds re-tuned, its own kept unless others do better.")] = None,
    label_kind: Annotated[
        LabelKind | None,
        typer.Option(help="dense: class per pixel 0..K-1; scribbles: 0 unlabelled, classes 1..K; instances: 0 background, 1..N objects. Default: dense, or instances for --task instances."),
    ] = None,
    axes: Annotated[str | None, typer.Option(help="Axes of the raw images, e.g. YX, ZYX, CYX (default: inferred).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML/JSON file with sections normalization, features, classifier, unet, train, tile (options given here override its values).")] = None,
    sigmas: Annotated[str | None, typer.Option(help="Feature scales, comma separated (classical).")] = None,
    n_estimators: Annotated[int | None, typer.Option(help="Trees of the random forest.")] = None,
    n_classes: Annotated[int | None, typer.Option(min=1, help="Number of classes; label values outside them are an error (default: from the labels).")] = None,
    spacing: Annotated[str | None, typer.Option(help="Voxel size z,y,x (or y,x) in any one unit, e.g. 50,4.6,4.6 for serial sections (default: what the image files state, else isotropic). Classical: --sigmas are in pixels of the finest axis, divided per axis. unet: planes 4x or more farther apart than the pixels train a 2D network plane by plane; a 3D network pools the finer axes first.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory the training may hold at its peak, e.g. 2GiB; it bounds feature blocks and training pixels (classical; default: a quarter of the RAM, at most what is available).")] = None,
    val_images: Annotated[Path | None, typer.Option(help="Validation images (networks; default: a split of the training pairs).")] = None,
    val_labels: Annotated[Path | None, typer.Option(help="Validation annotations.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Most training epochs (networks; default 100, no cap with --time-limit).")] = None,
    time_limit: Annotated[str | None, typer.Option(help="Train a network for this long, e.g. 20m: the learning rate anneals by then; it stops sooner only when validation stops improving (or at --epochs). Keeps the best model.")] = None,
    ddp: Annotated[int | None, typer.Option(min=1, help="Train the network in N local processes (DistributedDataParallel: gloo on CPUs, one GPU each with NCCL). Under torchrun leave it out.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted network training from its last checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing pixlearn model at --output (never anything else).")] = False,
    seed: Annotated[int | None, typer.Option(min=0, help="Random seed (default: the config file's, else 0).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda when available).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for PyTorch (default: PyTorch's choice).")] = None,
    precision: Annotated[Precision | None, typer.Option(help=PRECISION_HELP)] = None,
    object_diameter: Annotated[str | None, typer.Option(metavar="N|auto", help=OBJECT_DIAMETER_HELP)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Train a model from pairs of raw images and annotations, or an image classifier from labelled images."""
    _setup_logging(verbose)
    from pixlearn.app.builtin import fine_tune_choices, fine_tune_experiment, initial_model

    initial = initial_model(init, device) if init is not None else None
    method_name, task_name = fine_tune_choices(method and method.value, task and task.value, initial)
    method, task = Method(method_name), Task(task_name)
    if task == Task.objects:
        from pixlearn.app.classify_objects import train_objects_command

        typer.echo(train_objects_command(images, output, method.value, labels=labels, segment=segment, classes=classes,
                                         points=points, config=config, n_estimators=n_estimators, seed=seed, axes=axes,
                                         device=device, overwrite=overwrite))
        return
    _check_train_combination(method, task, labels=labels, ddp=ddp, object_options=(classes, points, segment))
    classify = task == Task.classify
    # before anything is read or trained: no minutes of training lost to an output refused at the end
    check_model_output(output, overwrite=overwrite,
                       data=[images, val_images] if classify else [images, labels, val_images, val_labels])
    experiment = experiment_from_options(config, method, sigmas=sigmas, n_estimators=n_estimators, epochs=epochs,
                                         time_limit=time_limit, seed=seed, precision=precision)
    if initial is not None:
        experiment = fine_tune_experiment(experiment, config, initial)
    experiment = with_object_diameter(experiment, method, object_diameter)
    voxel_size, budget = parse_spacing_option(spacing), parse_memory_option(memory)
    _set_threads(threads, seed={Method.unet: experiment.train.seed, Method.cnn: experiment.classify.train.seed}.get(
        method, seed or 0))
    if classify:
        typer.echo(_train_image_classifier(images, labels, output, experiment, (val_images, val_labels), axes=axes,
                                           resume=resume, overwrite=overwrite, device=device))
        return
    assert labels is not None  # checked by _check_train_combination
    kind = "restore" if task == Task.restore else (label_kind.value if label_kind else
                                                   ("instances" if task == Task.instances else "dense"))
    if method == Method.unet:
        from pixlearn.app.network_job import NetworkJob, launch_network_job

        if memory is not None:
            logger.warning("--memory applies to classical methods only; ignored for unet")
        job = NetworkJob(images, labels, output, task.value, kind, experiment, axes=axes, val_images=val_images,
                         val_labels=val_labels, init=init, resume=resume, overwrite=overwrite, device=device, threads=threads,
                         spacing=voxel_size, verbose=verbose)
        summary = launch_network_job(job, ddp=ddp, env=os.environ)
        if summary is not None:  # the main process (the others of a torchrun run say nothing)
            typer.echo(summary)
        return
    typer.echo(_train_classical(images, labels, output, kind, experiment, axes=axes, n_classes=n_classes,
                                spacing=voxel_size, memory_budget=budget, overwrite=overwrite))


def _train_image_classifier(images: Path, labels: Path | None, output: Path, experiment: Any,
                            validation: tuple[Path | None, Path | None], *, axes: str | None, resume: bool,
                            overwrite: bool, device: str | None) -> str:
    """``train --method cnn --task classify``: the image classifier's job, checkpointed beside `output`."""
    from pixlearn.app.classify import train_command
    from pixlearn.nets.fit import FitOptions

    options = FitOptions(checkpoint_dir=output.with_name(output.name + ".checkpoints"), resume=resume, progress=True,
                         device=device)
    return train_command(images, labels, output, experiment, validation=validation, axes=axes, overwrite=overwrite,
                         options=options)


def _check_train_combination(
    method: Method, task: Task, *, labels: Path | None, ddp: int | None, object_options: tuple[object, ...]
) -> None:
    """Refuse, before anything is read, a method, task and options that do not go together."""
    if any(option is not None for option in object_options):
        raise PixlearnError("--classes, --points and --segment: only for --task objects")
    if (method == Method.cnn or task == Task.classify) and (method != Method.cnn or task != Task.classify):
        raise PixlearnError("image classification is --method cnn --task classify (both)")
    if task == Task.classify:
        return
    if labels is None:
        raise PixlearnError("--labels: a folder of annotations is needed (but for --task classify)")
    if method != Method.unet and task != Task.semantic:
        raise PixlearnError(f"--method {method.value} does semantic segmentation only; use --method unet for --task {task.value}")
    if method != Method.unet and ddp is not None:
        raise PixlearnError(f"--ddp trains networks only; use --method unet, not {method.value}")


def _train_classical(
    images: Path, labels: Path, output: Path, kind: str, experiment: ExperimentConfig, *, axes: str | None,
    n_classes: int | None, spacing: tuple[float, ...] | None, memory_budget: int, overwrite: bool,
) -> str:
    """Train a random forest, SVM or gradient-boosting pixel classifier and save it; the line to print."""
    from pixlearn.app.jobs import resolved_experiment, train_classical_model
    from pixlearn.data.pairs import load_pairs
    from pixlearn.models.model_file import save_model

    pairs = load_pairs(images, labels, label_kind=kind, axes=axes)
    model = train_classical_model(pairs, label_kind=kind, experiment=experiment, n_classes=n_classes,
                                  spacing=spacing, memory_budget=memory_budget)
    save_model(model, output, experiment=resolved_experiment(experiment, model), overwrite=overwrite)
    return (f"trained {model.kind} model ({model.task}, {model.ndim}D, {model.n_channels} channel(s)) on "
            f"{len(pairs)} image(s) -> {output}")


@app.command()
def predict(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="Model folder or .zip file, or a built-in model's name (pixlearn models) when no file or folder of that name exists: a path that exists always wins.")],
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT...", help="Image files, folders or glob patterns.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
    probabilities: Annotated[bool, typer.Option(help="Also write the per-class probability maps / raw outputs.")] = False,
    axes: Annotated[str | None, typer.Option(help="Axes of the inputs (default: inferred).")] = None,
    output_format: Annotated[str, typer.Option("--format", help="tif, zarr, ome-zarr or ome-tif (zarr, ome-zarr: written tile by tile; ome-*: with physical pixel sizes, ome-zarr with a pyramid and labels).")] = "tif",
    objects: Annotated[str | None, typer.Option(help="Instance models: also write objects/<name>.geojson (QuPath) and/or .csv (measurements): geojson, csv or geojson,csv.")] = None,
    tile: Annotated[str | None, typer.Option(help="Tile shape, e.g. 512,512 (default: from --memory).")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory the prediction may hold at its peak, e.g. 2GiB; tiles get what the model and the outputs leave of it (default: a quarter of the RAM, at most what is available).")] = None,
    tta: Annotated[bool, typer.Option(help="Test-time augmentation: average over flips and 90-degree rotations.")] = False,
    diameter: Annotated[str | None, typer.Option(help="Median object diameter in the images (px), or 'auto' (estimated per image by a first pass): images are resized so that objects reach the size the model was trained on (instance networks).")] = None,
    dask: Annotated[str | None, typer.Option(help="Dask scheduler address (tcp://host:8786) or local:N.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, ... (networks).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for PyTorch (default: PyTorch's choice).")] = None,
    precision: Annotated[Precision, typer.Option(help=PRECISION_HELP)] = Precision.auto,
    overwrite: Annotated[bool, typer.Option(help="Redo outputs that are already finished (never a file pixlearn did not write).")] = False,
    explain: Annotated[str | None, typer.Option(help="Image classifiers: also write a saliency PNG per image: gradcam or occlusion.")] = None,
    labels: Annotated[Path | None, typer.Option(help="Object classifiers: folder of the instance label images, matched to the inputs by file name.")] = None,
    segment: Annotated[str | None, typer.Option(metavar="MODEL", help=SEGMENT_HELP)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Apply a trained model, or a built-in one (e.g. nuclei), to images of any size; an image classifier
    writes a table (OUT/predictions.csv, or OUT if it ends in .csv); an object classifier (with --labels
    or --segment) OUT/<name>.objects.csv, OUT/<name>.classes.tif and OUT/summary.csv."""
    _setup_logging(verbose)
    _set_threads(threads)
    from pixlearn.app.jobs import warn_about_inputs
    from pixlearn.data.folders import list_images
    from pixlearn.models.model_file import read_header

    kind = read_header(model_path).get("kind") if model_path.exists() else None
    if kind == "object-classifier":
        from pixlearn.app.classify_objects import predict_objects_command

        typer.echo(predict_objects_command(model_path, inputs, output, labels=labels, segment=segment, axes=axes,
                                           device=device, overwrite=overwrite))
        return
    if labels is not None or segment is not None:
        raise PixlearnError("--labels and --segment: only object classifiers (--task objects) take instance labels")
    if kind == "image-classifier":
        from pixlearn.app.classify import predict_command

        typer.echo(predict_command(model_path, inputs, output, explain=explain, axes=axes, device=device,
                                   overwrite=overwrite))
        return
    if explain is not None:
        raise PixlearnError("--explain: only image classifiers (--task classify) explain their predictions")
    from pixlearn.predict import PredictOptions, predict_many
    from pixlearn.predict.rescale import trained_diameter
    from pixlearn.predict.tiling import TileConfig
    from pixlearn.zoo import load_model

    object_kinds = _output_kinds(output_format, objects)
    size, budget = parse_diameter(diameter), parse_memory_option(memory)
    paths = list_images(inputs, exclude=[output])  # never its own outputs as inputs
    model = load_model(model_path, device=device)
    tile_cfg = TileConfig(tile_shape=parse_ints(tile, "--tile") if tile else None,
                          batch_size=1 if model.kind == "classical" else TileConfig().batch_size)
    warn_about_inputs(model, paths, axes)
    if size is not None and trained_diameter(model) is None:
        raise PixlearnError("--diameter: this model does not record the size of its training objects (instance "
                            "networks trained by pixlearn do)", model_path)
    set_precision = getattr(model, "set_precision", None)  # networks only
    if set_precision is not None:
        set_precision(precision.value)
    elif precision != Precision.auto:
        logger.warning("--precision applies to network models only; ignored for a %s model", model.kind)
    options = PredictOptions(tile=tile_cfg, axes=axes, output_format=output_format, probabilities=probabilities,
                             tta=tta, objects=object_kinds, overwrite=overwrite, diameter=size, memory_budget=budget)
    manifest = predict_many(model, paths, output, options, dask_address=dask, model_name=str(model_path),
                            progress=True)
    typer.echo(f"predicted {len(paths)} image(s) -> {output} (manifest: {manifest})")


def _output_kinds(output_format: str, objects: str | None) -> tuple[str, ...]:
    """Check ``--format``; the object tables ``--objects`` asks for."""
    from pixlearn.predict.batch import OBJECT_FORMATS, OUTPUT_FORMATS

    if output_format not in OUTPUT_FORMATS:
        raise PixlearnError(f"--format {output_format!r}: use {', '.join(OUTPUT_FORMATS)}")
    kinds = tuple(k.strip() for k in objects.split(",") if k.strip()) if objects else ()
    if any(k not in OBJECT_FORMATS for k in kinds):
        raise PixlearnError(f"--objects {objects!r}: use geojson, csv or geojson,csv")
    return kinds


@app.command()
def evaluate(
    pred: Annotated[Path, typer.Option(help="Folder of predictions (classify: the prediction table or its folder, or a folder of object predictions).")],
    truth: Annotated[Path, typer.Option(help="Folder of ground truth, matched by file name (classify: a labels table or a folder per class; objects: a table image,object_id,class).")],
    kind: Annotated[str, typer.Option(help="semantic, instances, restore or classify.")] = "semantic",
    n_classes: Annotated[int | None, typer.Option(min=1, help="Number of classes (semantic; default: from the data).")] = None,
    scale_invariant: Annotated[bool, typer.Option(help="Restore: put each prediction on its truth's normalised scale before PSNR/SSIM.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder for metrics.json / metrics.csv (default: --pred).")] = None,
) -> None:
    """Score predictions against ground truth (JSON and CSV reports)."""
    from pixlearn.metrics.report import evaluate_folders, write_report

    if kind == "classify":
        from pixlearn.app.classify import evaluate_command

        typer.echo(evaluate_command(pred, truth, output))
        return
    if kind not in ("semantic", "instances", "restore"):
        raise PixlearnError(f"--kind {kind!r}: use semantic, instances, restore or classify")
    result = evaluate_folders(pred, truth, kind=kind, n_classes=n_classes, scale_invariant=scale_invariant)
    written = write_report(result, output or pred)
    typer.echo(json.dumps(result["aggregate"], indent=2))
    typer.echo(f"report: {', '.join(str(p) for p in written.values())}")


@app.command()
def info(model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="Model folder or .zip file, or a built-in model's name (a path that exists wins).")]) -> None:
    """Show what a model file holds: kind, task, inputs, classes, settings, training history;
    for a built-in model its model card too."""
    from pixlearn.zoo import describe

    header = describe(model_path)
    typer.echo(json.dumps(header, indent=2))


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the demo data, model and results.")] = Path("demo_output"),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 0,
    unet_seconds: Annotated[float, typer.Option(min=0.0, help="Training time of the instance U-Net, seconds (0: skip it).")] = 60.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Generate synthetic nuclei, train a random forest from scribbles and an instance U-Net, predict, evaluate, plot."""
    _setup_logging(verbose)
    from pixlearn.app.demo import run_demo

    summary = run_demo(output, seed=seed, unet_seconds=unet_seconds, progress=typer.echo)
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


app.command(name="models", help="List the built-in models (name, task, training data, licence, scores, size); use one by name, e.g. pixlearn predict nuclei IMAGES -o OUT.")(models)
app.command(name="export", help="Export a model for other tools: a bioimage.io package (networks) or ONNX (forests).")(export)
app.command(name="gui", help="Open napari with the pixlearn widget docked and IMAGES loaded (needs the gui extra).")(gui)


def main() -> None:  # pragma: no cover
    app()
