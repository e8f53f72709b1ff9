"""Apply a model to many image files: :func:`predict_many`, its manifest, skip and resume.

Every input is checked before any prediction runs; finished outputs are skipped and leftovers
of an interrupted run removed; each finished image appends a line to ``manifest.jsonl``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pixlearn.data.formats import file_stem
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import PixelModel
from pixlearn.predict._machinery import (
    INCOMPLETE,
    FileTask,
    RunOptions,
    check_image_for_model,
    predict_file,
    progress_bar,
    write_errors,
)
from pixlearn.predict.distributed import predict_tasks_dask
from pixlearn.predict.files import canonical_input
from pixlearn.predict.tiling import TileConfig

logger = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
OUTPUT_FORMATS: tuple[str, ...] = ("tif", "zarr")


def predict_many(
    model: PixelModel,
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    tile_cfg: TileConfig | None = None,
    axes: str | None = None,
    output_format: str = "tif",
    return_probabilities: bool = False,
    tta: bool = False,
    dask_address: str | None = None,
    overwrite: bool = False,
    model_name: str | None = None,
    progress: bool = False,
) -> Path:
    """Apply a model to many images, skipping finished outputs, with a manifest.

    Every input is opened and checked before any prediction runs. Outputs are written
    atomically (TIFF: to a temporary name, renamed when complete; Zarr: tile by tile into a
    temporary folder marked ``incomplete``, renamed when complete), so a finished output is
    one whose name exists; a rerun skips those and removes leftovers of an interrupted run.
    Each finished image appends a line to ``out_dir/manifest.jsonl``: input, output, model,
    seconds.

    Parameters
    ----------
    model : PixelModel
    inputs : sequence of path-like
        Image files (see :func:`pixlearn.data.folders.list_images` to expand folders and patterns).
    out_dir : path-like
        Created when missing. Output ``<stem>.<output_format>``.
    tile_cfg : TileConfig, optional
    axes : str, optional
        Axes of the inputs (default: from metadata or inferred).
    output_format : {"tif", "zarr"}
        ``"zarr"`` writes tile by tile: memory stays bounded for any image size.
    return_probabilities : bool
        Also write ``probabilities/<stem>.<output_format>`` (raw outputs ``(..., K)``), in a
        sub-folder so that the label images alone can be evaluated against a truth folder.
    tta : bool
        Test-time augmentation.
    dask_address : str, optional
        ``"tcp://host:port"`` of a running Dask scheduler, or ``"local:N"`` for N local
        worker processes. Images go to workers; Zarr outputs of large images are split into
        blocks across workers.
    overwrite : bool
        Redo finished outputs.
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
        An unreadable input, an image the model does not take, an output folder that cannot be
        written, a full disk.
    """
    if output_format not in OUTPUT_FORMATS:
        raise PixlearnError(f"output format {output_format!r}: use tif or zarr")
    options = RunOptions(tile_cfg or TileConfig(), axes, tta)
    out_dir = _prepare_out_dir(Path(out_dir))
    tasks = _plan_tasks(model, [Path(p) for p in inputs], out_dir, options, output_format, return_probabilities)
    if not overwrite:
        tasks = [task for task in tasks if not _skip_finished(task)]
    seconds: Iterable[float]  # local: lazily, so that each image enters the manifest when done
    if dask_address:
        seconds = predict_tasks_dask(model, tasks, options, dask_address, progress=progress)
    else:
        seconds = _predict_tasks_local(model, tasks, options, progress)
    manifest = out_dir / MANIFEST
    name = model_name or type(model).__name__
    for task, took in zip(tasks, seconds):
        _append_manifest(manifest, {"input": str(task.source), "output": str(task.target), "model": name,
                                    "seconds": round(float(took), 3)})
    return manifest


def _prepare_out_dir(out_dir: Path) -> Path:
    """Create `out_dir`, check that it can be written, and remove leftovers of an interrupted run."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PixlearnError(f"cannot write to the output folder ({exc.strerror or exc})", out_dir) from exc
    _remove_stale(out_dir)
    return out_dir


def _plan_tasks(model: PixelModel, paths: list[Path], out_dir: Path, options: RunOptions, output_format: str,
                probabilities: bool) -> list[FileTask]:
    """One task per input, each input opened and checked against the model before anything runs."""
    tasks: list[FileTask] = []
    targets: set[Path] = set()
    for path in paths:
        image = canonical_input(path, options.axes, model.n_channels)
        check_image_for_model(model, image.shape, path)
        task = _task_for(path, out_dir, output_format, probabilities)
        if task.target in targets:
            raise PixlearnError(f"two inputs would write the same output {task.target.name}", path)
        targets.add(task.target)
        tasks.append(task)
    return tasks


def _task_for(path: Path, out_dir: Path, fmt: str, probabilities: bool) -> FileTask:
    stem = file_stem(path)
    prob_target = out_dir / "probabilities" / f"{stem}.{fmt}" if probabilities else None
    return FileTask(path, out_dir / f"{stem}.{fmt}", prob_target)


def _skip_finished(task: FileTask) -> bool:
    if _finished(task.target, task.prob_target):
        logger.info("skipping %s: %s is finished", task.source, task.target)
        return True
    return False


def _finished(target: Path, prob_target: Path | None) -> bool:
    for p in (target, prob_target):
        if p is None:
            continue
        if not p.exists():
            return False
        if p.suffix == ".zarr":
            try:
                import zarr

                if zarr.open_array(str(p), mode="r").attrs.get(INCOMPLETE, False):
                    return False
            except Exception:
                return False
    return True


def _remove_stale(out_dir: Path) -> None:
    """Remove temporary outputs left by an interrupted run (``.name.xxxx.partial``)."""
    for p in itertools.chain(out_dir.glob(".*.partial"), out_dir.glob("probabilities/.*.partial")):
        logger.info("removing unfinished output %s", p)
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _predict_tasks_local(model: PixelModel, tasks: list[FileTask], options: RunOptions,
                         progress: bool) -> Iterator[float]:
    with progress_bar(progress, "images") as advance:
        if advance is not None:
            advance(0, total=len(tasks))
        for task in tasks:
            yield predict_file(model, task, options)
            if advance is not None:
                advance(1)


def _append_manifest(manifest: Path, record: dict[str, Any]) -> None:
    with write_errors(manifest), open(manifest, "a") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_manifest(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of ``out_dir/manifest.jsonl`` (empty when there is none)."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
