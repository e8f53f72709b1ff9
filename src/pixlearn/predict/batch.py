"""Apply a model to many image files: :func:`predict_many`, its manifest, skip and resume.

Every input is checked before any prediction runs and before the output folder is created;
finished outputs are skipped and leftovers of an interrupted run removed; each finished image
appends a line to ``manifest.jsonl``. The manifest is what pixlearn knows it made: before any
image runs, a *claim* line names every output the run may write, so that an output renamed into
place by a run killed before its finished line is still known as pixlearn's. A file at an output
path that no line names is never written over, and the output folder may not be or contain an
input.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pixlearn.config import Config
from pixlearn.data.checks import available_memory
from pixlearn.data.formats import file_stem
from pixlearn.data.images import open_image
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import PixelModel
from pixlearn.predict._machinery import INCOMPLETE, check_image_for_model, output_bytes, progress_bar
from pixlearn.predict.distributed import predict_tasks_dask
from pixlearn.predict.file_outputs import FileTask, RunOptions, predict_file, write_errors
from pixlearn.predict.files import canonical_input
from pixlearn.predict.tiling import TileConfig

logger = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
OUTPUT_FORMATS: tuple[str, ...] = ("tif", "zarr", "ome-zarr", "ome-tif")
#: File suffix of each output format.
OUTPUT_SUFFIXES = {"tif": ".tif", "zarr": ".zarr", "ome-zarr": ".ome.zarr", "ome-tif": ".ome.tif"}
#: Output formats written tile by tile (memory bounded for any image size).
TILED_FORMATS = ("zarr", "ome-zarr")
#: Object files an instance model can write beside its labels (``objects/<stem>.<kind>``).
OBJECT_FORMATS = ("geojson", "csv")
#: Largest output predicted whole in memory (TIFF); larger ones need the Zarr format, written
#: tile by tile. Also at most half the memory available, leaving room for the image and the model.
MAX_IN_MEMORY_OUTPUT_BYTES = 16 * 2**30
#: Names of pixlearn's own temporary files (``data.atomic`` and the scratch arrays of instance
#: models); only these are removed as leftovers of an interrupted run.
_STALE = re.compile(r"^\.(?:.+\.[0-9a-f]{8}(?:\.replaced)?|outputs-\d+-\d+)\.partial$")


@dataclasses.dataclass(frozen=True)
class PredictOptions(Config):
    """What :func:`predict_many` writes for each image, and how it reads and tiles it.

    Parameters
    ----------
    tile : TileConfig
        Tile shape, overlap, blending (default: chosen from the model and the memory).
    axes : str, optional
        Axes of the inputs (default: from metadata or inferred).
    output_format : {"tif", "zarr", "ome-zarr", "ome-tif"}
        ``"zarr"`` writes tile by tile: memory stays bounded for any image size. ``"ome-zarr"``
        (``<stem>.ome.zarr``) too, as OME-Zarr NGFF 0.4 (Zarr v2) with a multiscale pyramid, the
        labels also under ``labels/<classes|instances>`` with colours, and the input's physical
        pixel sizes. ``"ome-tif"`` (``<stem>.ome.tif``): OME-TIFF with axes and physical sizes.
    probabilities : bool
        Also write ``probabilities/<stem>.<output_format>`` (raw outputs ``(..., K)``), in a
        sub-folder so that the label images alone can be evaluated against a truth folder.
    tta : bool
        Test-time augmentation.
    objects : tuple of {"geojson", "csv"}
        Instance models: also write ``objects/<stem>.geojson`` (one polygon per object, QuPath
        detections; 2D) and / or ``objects/<stem>.csv`` (per-object measurements), measured on the
        finished label image, which is then held whole in memory.
    overwrite : bool
        Redo finished outputs (files pixlearn wrote, as the manifest says; never others).
    diameter : float or "auto", optional
        Median diameter (px) of the objects in the images: each image is resized so that they
        reach the size the model was trained on (:func:`pixlearn.predict.rescale.scale_for`);
        ``"auto"`` estimates it per image from a first pass.
    memory_budget : float, optional
        Bytes a process predicting an image may hold at its peak (``pixlearn predict --memory``;
        see :func:`pixlearn.data.memory.default_memory_budget` for the command's default). When
        the tiles are not given and the model runs in host memory, they get what the budget
        leaves once the model is loaded and the outputs held in memory (TIFF) are counted.
        ``None``: tiles from ``tile`` alone (a quarter of the available memory, at most 1 GiB,
        per batch).
    """

    tile: TileConfig = dataclasses.field(default_factory=TileConfig)
    axes: str | None = None
    output_format: str = "tif"
    probabilities: bool = False
    tta: bool = False
    objects: tuple[str, ...] = ()
    overwrite: bool = False
    diameter: float | str | None = None
    memory_budget: float | None = None

    def __post_init__(self) -> None:
        if self.diameter is not None and self.diameter != "auto" and (
                isinstance(self.diameter, str) or not self.diameter > 0):
            raise PixlearnError(f"diameter {self.diameter!r}: use a positive number of pixels or 'auto'")
        if self.memory_budget is not None and not self.memory_budget > 0:
            raise PixlearnError(f"memory budget must be positive, got {self.memory_budget}")
        if self.output_format not in OUTPUT_FORMATS:
            raise PixlearnError(f"output format {self.output_format!r}: use {', '.join(OUTPUT_FORMATS)}")
        for kind in self.objects:
            if kind not in OBJECT_FORMATS:
                raise PixlearnError(f"objects {kind!r}: use {' or '.join(OBJECT_FORMATS)}")


def predict_many(
    model: PixelModel,
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    options: PredictOptions | None = None,
    *,
    dask_address: str | None = None,
    model_name: str | None = None,
    progress: bool = False,
) -> Path:
    """Apply a model to many images, skipping finished outputs, with a manifest.

    Every input is opened and checked before any prediction runs, and before `out_dir` is
    created: its kind and values, its fit to the model, its first pixel read, and the memory a
    TIFF output needs. Outputs are written atomically (TIFF: to a temporary name, renamed when
    complete; Zarr: tile by tile into a temporary folder marked ``incomplete``, renamed when
    complete). Each finished image appends a line to ``out_dir/manifest.jsonl``: input,
    output(s), model, seconds. A finished output is one the manifest names that can be opened;
    a rerun skips those and removes leftovers of an interrupted run. Nothing is ever written
    over a file the manifest does not name, not even with `overwrite`; if the run fails before
    any output is finished, an output folder it created is removed again.

    Parameters
    ----------
    model : PixelModel
    inputs : sequence of path-like
        Image files (see :func:`pixlearn.data.folders.list_images` to expand folders and patterns).
    out_dir : path-like
        Created when missing. Output ``<stem>.<output_format>``.
    options : PredictOptions, optional
        Output format, probabilities, tiles, axes, test-time augmentation, overwrite.
    dask_address : str, optional
        ``"tcp://host:port"`` of a running Dask scheduler, or ``"local:N"`` for N local
        worker processes. Images go to workers; Zarr outputs of large images are split into
        blocks across workers.
    model_name : str, optional
        Written to the manifest (default: the model's class name).
    progress : bool
        Show a progress bar over images.

    Returns
    -------
    manifest : Path

    Raises
    ------
    PixlearnError
        An unreadable input, an image the model does not take, an output too large for memory
        (TIFF), an output folder that is or contains an input, a file at an output path that
        pixlearn did not write, an output folder that cannot be written, a full disk.
    """
    wanted = PredictOptions() if options is None else options
    output_format, return_probabilities, overwrite = wanted.output_format, wanted.probabilities, wanted.overwrite
    run = RunOptions(wanted.tile, wanted.axes, wanted.tta, wanted.memory_budget, wanted.diameter)
    out_dir = Path(out_dir)
    paths = [Path(p) for p in inputs]
    _check_out_dir(out_dir, paths)
    tasks = _plan_tasks(model, paths, out_dir, run, output_format, return_probabilities, wanted.objects)
    _refuse_foreign_outputs(tasks, made_by_pixlearn(out_dir, claims=True))
    created = _prepare_out_dir(out_dir)
    finished = made_by_pixlearn(out_dir, claims=False)
    tasks = [task for task in tasks if overwrite or not _skip_finished(task, finished)]
    manifest = out_dir / MANIFEST
    name = model_name or type(model).__name__
    done = 0
    try:
        if tasks:  # before anything is written: what a killed run leaves is still known as ours
            claimed = [p.relative_to(out_dir).as_posix() for task in tasks for p in _targets(task)]
            append_manifest(manifest, {"claimed": claimed})
        seconds: Iterable[float]  # local: lazily, so that each image enters the manifest when done
        if dask_address:
            seconds = predict_tasks_dask(model, tasks, run, dask_address, progress=progress)
        else:
            seconds = _predict_tasks_local(model, tasks, run, progress)
        for task, took in zip(tasks, seconds):
            record = {"input": str(task.source), "output": str(task.target), "model": name,
                      "seconds": round(float(took), 3)}
            if task.prob_target is not None:
                record["probabilities"] = str(task.prob_target)
            if task.objects:
                record["objects"] = [str(p) for p in task.objects]
            append_manifest(manifest, record)
            done += 1
    except BaseException:
        if created and done == 0 and not any(os.path.lexists(p) for task in tasks for p in _targets(task)):
            _remove_if_empty(out_dir)
        raise
    return manifest


def _targets(task: FileTask) -> list[Path]:
    """Every path a task writes."""
    return [p for p in (task.target, task.prob_target, *task.objects) if p is not None]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_out_dir(out_dir: Path, inputs: list[Path]) -> None:
    """Refuse an output folder that is an input, or is or contains an input's folder."""
    target = out_dir.resolve()
    for path in inputs:
        source = path.resolve()
        if _inside(source, target):
            what = "is the input" if source == target else "contains the input"
            raise PixlearnError(f"the output folder {what} {path}; choose an output folder outside the inputs",
                                out_dir)
        if _inside(target, source):
            raise PixlearnError(f"the output folder lies inside the input {path}", out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise PixlearnError("the output folder is a file", out_dir)


def _prepare_out_dir(out_dir: Path) -> bool:
    """Create `out_dir` (``True`` if it was created), check that it can be written, and remove
    leftovers of an interrupted run."""
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if created:
            _remove_if_empty(out_dir)
        raise PixlearnError(f"cannot write to the output folder ({exc.strerror or exc})", out_dir) from exc
    _remove_stale(out_dir)
    return created


def _remove_if_empty(out_dir: Path) -> None:
    """Remove an output folder this run created, when nothing was finished in it."""
    for sub in (out_dir / "probabilities", out_dir / "objects", out_dir):
        try:
            manifest = sub / MANIFEST
            if manifest.is_file() and not read_manifest(sub):  # claims alone: nothing was finished
                manifest.unlink()
            sub.rmdir()
        except OSError:
            pass


def _plan_tasks(model: PixelModel, paths: list[Path], out_dir: Path, options: RunOptions, output_format: str,
                probabilities: bool, objects: tuple[str, ...] = ()) -> list[FileTask]:
    """One task per input, each input opened and checked against the model before anything runs."""
    if objects and model.task != "instances":
        raise PixlearnError(f"objects are measured on instance labels; this model's task is {model.task}")
    if "geojson" in objects and model.ndim != 2:
        raise PixlearnError("GeoJSON objects are 2D polygons; use csv for a 3D model")
    tasks: list[FileTask] = []
    targets: set[Path] = set()
    for path in paths:
        image = canonical_input(path, options.axes, model.n_channels)
        check_image_for_model(model, image.shape, path)
        image[(slice(0, 1),) * image.ndim]  # a corrupt lazy file fails here, before anything runs
        if output_format not in TILED_FORMATS:
            _check_output_memory(model, image.shape, probabilities, path)
        if objects:
            _check_objects_memory(image.shape, path)
        task = _task_for(path, out_dir, output_format, probabilities, objects)
        if task.target in targets:
            raise PixlearnError(f"two inputs would write the same output {task.target.name}", path)
        targets.add(task.target)
        tasks.append(task)
    return tasks


def _task_for(path: Path, out_dir: Path, fmt: str, probabilities: bool, objects: tuple[str, ...] = ()) -> FileTask:
    stem, suffix = file_stem(path), OUTPUT_SUFFIXES[fmt]
    prob_target = out_dir / "probabilities" / f"{stem}{suffix}" if probabilities else None
    object_targets = tuple(out_dir / "objects" / f"{stem}.{kind}" for kind in dict.fromkeys(objects))
    return FileTask(path, out_dir / f"{stem}{suffix}", prob_target, object_targets)


def _check_objects_memory(shape: tuple[int, ...], path: Path) -> None:
    """Refuse objects of an image whose labels and intensities, measured whole, would not fit."""
    need = math.prod(shape[:-1]) * (8 + 4 * shape[-1]) * 2  # int64 labels, float32 image, working copies
    limit = min(available_memory() // 2, MAX_IN_MEMORY_OUTPUT_BYTES)
    if need > limit:
        raise PixlearnError(
            f"objects are measured on the whole label image, which needs {need / 2**30:.1f} GiB here, more "
            f"than {limit / 2**30:.1f} GiB; predict without --objects", path)


def _check_output_memory(model: PixelModel, shape: tuple[int, ...], probabilities: bool, path: Path) -> None:
    """Refuse an image whose outputs, held whole in memory for a TIFF, would not fit."""
    spatial = tuple(int(s) for s in shape[:-1])
    need = output_bytes(model, spatial, probabilities)
    limit = min(available_memory() // 2, MAX_IN_MEMORY_OUTPUT_BYTES)
    if need > limit:
        raise PixlearnError(
            f"a TIFF output of {math.prod(spatial)} pixels is predicted whole in memory and needs "
            f"{need / 2**30:.1f} GiB, more than {limit / 2**30:.1f} GiB (half the memory available, at most "
            f"{MAX_IN_MEMORY_OUTPUT_BYTES // 2**30} GiB); use --format zarr (written tile by tile)", path)


def made_by_pixlearn(out_dir: Path, claims: bool) -> set[Path]:
    """The outputs the manifest of `out_dir` names as finished, and also those it claims if
    `claims` (resolved paths; also where they are now if the folder was moved since)."""
    made: set[Path] = set()
    here = out_dir.resolve()
    for record in _read_records(out_dir) if claims else read_manifest(out_dir):
        for name in record.get("claimed", []) if isinstance(record.get("claimed"), list) else []:
            if isinstance(name, str):
                made.add((here / name).resolve())  # relative to the output folder
        for key, sub in (("output", here), ("probabilities", here / "probabilities")):
            if isinstance(record.get(key), str):
                made.add(Path(record[key]).resolve())
                made.add(sub / Path(record[key]).name)
        for name in record.get("objects", []) if isinstance(record.get("objects"), list) else []:
            if isinstance(name, str):
                made.add(Path(name).resolve())
                made.add(here / "objects" / Path(name).name)
    return made


def _refuse_foreign_outputs(tasks: list[FileTask], made: set[Path]) -> None:
    """Refuse, before anything is written, an output path where a file pixlearn did not make lies."""
    for task in tasks:
        for target in (task.target, task.prob_target, *task.objects):
            if target is not None and os.path.lexists(target) and target.resolve() not in made:
                raise PixlearnError(
                    f"exists and was not written by pixlearn (not in {MANIFEST}); not replaced: move it or "
                    "choose another output folder", target)


def _skip_finished(task: FileTask, made: set[Path]) -> bool:
    if _finished(task.target, made) and (task.prob_target is None or _finished(task.prob_target, made)) \
            and all(p.resolve() in made and p.exists() for p in task.objects):
        logger.info("skipping %s: %s is finished", task.source, task.target)
        return True
    return False


def _finished(target: Path, made: set[Path]) -> bool:
    """A finished output: named by the manifest, there, and readable (a damaged one is redone)."""
    if target.resolve() not in made or not target.exists():
        return False
    try:
        array, _ = open_image(target)
    except PixlearnError:
        logger.warning("%s is damaged; predicting it again", target)
        return False
    if target.suffix == ".zarr" and getattr(array, "attrs", {}).get(INCOMPLETE, False):
        return False
    return True


def _remove_stale(out_dir: Path) -> None:
    """Remove temporary outputs left by an interrupted run (pixlearn's ``.name.xxxxxxxx.partial``)."""
    for p in itertools.chain(out_dir.glob(".*.partial"), out_dir.glob("probabilities/.*.partial"),
                             out_dir.glob("objects/.*.partial")):
        if not _STALE.match(p.name):
            continue
        logger.info("removing unfinished output %s", p)
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)


def _predict_tasks_local(model: PixelModel, tasks: list[FileTask], options: RunOptions,
                         progress: bool) -> Iterator[float]:
    with progress_bar(progress, "images") as advance:
        if advance is not None:
            advance(0, total=len(tasks))
        for task in tasks:
            yield predict_file(model, task, options)
            if advance is not None:
                advance(1)


def append_manifest(manifest: Path, record: dict[str, Any]) -> None:
    with write_errors(manifest), open(manifest, "a+b") as fh:
        if fh.tell() > 0:  # a line cut short by a killed run: start on a fresh line
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
        fh.write((json.dumps(record) + "\n").encode())
        fh.flush()
        os.fsync(fh.fileno())


def read_manifest(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of ``out_dir/manifest.jsonl``, one per finished image (empty when there is none).

    A last line cut short (a run killed while appending it) is ignored, and so are the claim
    lines (``{"claimed": [...]}``) a run writes before it starts.

    Raises
    ------
    PixlearnError
        A manifest that cannot be read or is not one pixlearn writes.
    """
    return [record for record in _read_records(out_dir) if "claimed" not in record]


def _read_records(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every line of ``out_dir/manifest.jsonl``, claims included.

    Raises
    ------
    PixlearnError
        A manifest that cannot be read or is not one pixlearn writes.
    """
    path = Path(out_dir) / MANIFEST
    if not os.path.lexists(path):
        return []
    if not path.is_file():
        raise PixlearnError("is not a regular file", path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PixlearnError(f"cannot read the manifest ({exc})", path) from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            if number == len(lines):
                logger.warning("%s: ignoring an unfinished last line", path)
                continue
            raise PixlearnError(f"line {number} is not a pixlearn manifest record", path)
        records.append(record)
    return records
