"""The network training job of ``pixlearn train --method unet``, in one process or several.

:func:`launch_network_job` runs a :class:`NetworkJob` in this process, in ``--ddp N`` new local
processes (:func:`pixlearn.nets.spawn.spawn_local`), or as one of the processes that ``torchrun``
started (the launcher's ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``). Every process reads the pairs
and trains on its part of each batch (:mod:`pixlearn.nets.distributed`); the main process writes
the checkpoints and the model and returns the summary line.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pixlearn.errors import PixlearnError
from pixlearn.experiment import ExperimentConfig


@dataclasses.dataclass(frozen=True)
class NetworkJob:
    """What ``pixlearn train --method unet`` was asked to do (plain data: it travels to new processes).

    Parameters
    ----------
    images, labels : Path
        Folders of raw images and of their annotations.
    output : Path
        The model to write; checkpoints go to ``<output>.checkpoints``.
    task : {"semantic", "instances", "restore"}
    label_kind : {"dense", "scribbles", "instances", "restore"}
    experiment : ExperimentConfig
        With the command line's options applied.
    axes : str, optional
        Axes of the raw images (default inferred).
    val_images, val_labels : Path, optional
        Validation pairs (default a split of the training pairs).
    init : str, optional
        Fine-tune from this built-in model name or model path (``--init``); each process loads it.
    resume, overwrite : bool
        Continue from the last checkpoint; replace an earlier pixlearn model at `output`.
    device : str, optional
        ``cpu``, ``cuda`` ... (default CUDA when available); several processes take one GPU each.
    threads : int, optional
        PyTorch CPU threads per process.
    spacing : tuple of float, optional
        Voxel size given with ``--spacing`` (default what the image files state, else isotropic).
    verbose : bool
        Log at INFO level.
    """

    images: Path
    labels: Path
    output: Path
    task: str
    label_kind: str
    experiment: ExperimentConfig
    axes: str | None = None
    val_images: Path | None = None
    val_labels: Path | None = None
    init: str | None = None
    resume: bool = False
    overwrite: bool = False
    device: str | None = None
    threads: int | None = None
    spacing: tuple[float, ...] | None = None
    verbose: bool = False


def launch_network_job(job: NetworkJob, *, ddp: int | None, env: Mapping[str, str]) -> str | None:
    """Run `job` in this process, in `ddp` new local processes, or as one process of a ``torchrun`` run.

    Parameters
    ----------
    job : NetworkJob
    ddp : int, optional
        Number of local processes to start (``--ddp``); ``None`` or 1: this process only.
    env : mapping of str to str
        The environment (``os.environ``): a launcher's ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``.

    Returns
    -------
    summary : str or None
        One line describing the saved model; ``None`` in the other processes of a ``torchrun`` run.

    Raises
    ------
    PixlearnError
        `ddp` inside a run that a launcher already started, or bad input in any process.
    """
    from pixlearn.nets.distributed import world_from_environment

    world = world_from_environment(env)
    if ddp is not None and ddp > 1:
        if world.is_distributed:
            raise PixlearnError(f"--ddp {ddp}: this process is already one of {world.world_size} that a launcher "
                                "(torchrun) started; leave --ddp out")
        from pixlearn.nets.spawn import spawn_local

        return spawn_local(run_spawned_network_job, job, ddp)
    return run_network_job(job, world)


def run_spawned_network_job(job: NetworkJob, world: Any) -> str | None:
    """The body of each ``--ddp`` process: the logging, threads and seed the command line sets, then the job.

    Without ``--threads`` the CPU cores are shared out between the processes.
    """
    import torch

    logging.basicConfig(level=logging.INFO if job.verbose and world.is_main else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(job.threads or max(1, cores // world.world_size))
    torch.manual_seed(job.experiment.train.seed)
    return run_network_job(job, world)


def run_network_job(job: NetworkJob, world: Any = None) -> str | None:
    """Read the pairs, train, and (in the main process) save the model.

    Parameters
    ----------
    job : NetworkJob
    world : pixlearn.nets.distributed.World, optional
        This process's place in a distributed run; default a single process.

    Returns
    -------
    summary : str or None
        The line the command prints, from the main process; ``None`` from the others.
    """
    from pixlearn.app.builtin import initial_model
    from pixlearn.app.jobs import resolve_spacing, resolved_experiment, train_network_model
    from pixlearn.data.pairs import load_pairs
    from pixlearn.models.model_file import save_model
    from pixlearn.nets.distributed import World
    from pixlearn.nets.fit import FitOptions

    world = World() if world is None else world
    pairs = load_pairs(job.images, job.labels, label_kind=job.label_kind, axes=job.axes)
    val_pairs = None
    if job.val_images and job.val_labels:
        val_pairs = load_pairs(job.val_images, job.val_labels, label_kind=job.label_kind, axes=job.axes)
    options = FitOptions(checkpoint_dir=job.output.with_name(job.output.name + ".checkpoints"), resume=job.resume,
                         progress=world.is_main, device=job.device, world=world)
    initial = None if job.init is None else initial_model(job.init, job.device)
    model = train_network_model(pairs, task=job.task, label_kind=job.label_kind, experiment=job.experiment,
                                val_pairs=val_pairs, options=options, init=initial,
                                spacing=resolve_spacing(pairs, job.spacing, None) if pairs[0].image.ndim == 4 else None)
    if not world.is_main:
        return None
    save_model(model, job.output, experiment=resolved_experiment(job.experiment, model), overwrite=job.overwrite)
    processes = f" in {world.world_size} processes" if world.is_distributed else ""
    start = f", fine-tuned from {job.init}" if job.init is not None else ""
    return (f"trained {model.kind} model ({model.task}, {model.ndim}D, {model.n_channels} channel(s){start}) on "
            f"{len(pairs)} image(s){processes} -> {job.output}")


__all__ = ["NetworkJob", "launch_network_job", "run_network_job", "run_spawned_network_job"]
