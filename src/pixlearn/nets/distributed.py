"""Training in several processes: torch.distributed and DistributedDataParallel (DDP), in one place.

A distributed run is ``N`` processes ("ranks") that each hold a replica of the network, train on
their share of every batch and average their gradients (DDP) before each optimiser step, so the
replicas stay equal. Process 0 (the main one) writes checkpoints and logs and keeps the model;
validation is shared out and its sums added up across processes, so every process takes the
same decisions (best epoch, early stopping, time limit).

* :class:`World`: who this process is (rank, number of processes, rank on its machine, where to
  meet) and the few collective operations the training loop needs, each a no-op in a single
  process.
* :func:`world_from_environment`: the :class:`World` that ``torchrun`` describes in
  ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``).
* :func:`joined`: the process group (gloo on CPUs, NCCL on GPUs) for the duration of a block.
* :func:`process_device`, :func:`replicate`, :func:`wrap`: each process's device (``cuda:LOCAL_RANK``),
  its replica (BatchNorm synchronised across GPUs) and the DDP wrapper.
* :class:`BlockSampler`: each process's part of every batch.

``N`` local processes that form one run (``pixlearn train --ddp N``) are started by
:func:`pixlearn.nets.spawn.spawn_local`; ``torchrun`` starts them on one machine or several.

How batches are shared: the dataset items of a step are the same as in a single process
(``batch_size`` consecutive items, :class:`pixlearn.nets.patches.PatchDataset` draws item ``i``
of epoch ``e`` from ``(seed, e, i)`` alone), and process ``r`` takes the ``r``-th block of
``batch_size / N`` of them. So the processes train on different patches, the total batch is
``batch_size``, and the patches seen do not depend on ``N``: for a loss that is a mean over
pixels and a network without BatchNorm, the averaged gradient equals the single-process one.
On CPUs BatchNorm layers normalise with each process's own part of the batch; on GPUs they are
converted to :class:`torch.nn.SyncBatchNorm`, which uses the whole batch.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from pixlearn.errors import PixlearnError

TIMEOUT = datetime.timedelta(minutes=30)
"""How long a collective operation waits for the other processes before failing."""


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place in a (possibly single-process) training run.

    Parameters
    ----------
    rank : int
        Index of this process, ``0..world_size-1``; 0 is the main process.
    world_size : int
        Number of processes; 1 means not distributed (every collective is then a no-op).
    local_rank : int
        Index of this process on its machine: the GPU it uses.
    init_method : str
        Where the processes meet (:func:`torch.distributed.init_process_group`): ``"env://"``
        (``MASTER_ADDR``/``MASTER_PORT``, as ``torchrun`` sets them) or ``"tcp://HOST:PORT"``.

    Examples
    --------
    >>> World().is_distributed, World(rank=1, world_size=2).is_main
    (False, False)
    >>> World(rank=1, world_size=2).local_batch_size(8)
    4
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    init_method: str = "env://"

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size or self.local_rank < 0:
            raise PixlearnError(f"process rank {self.rank} (local rank {self.local_rank}) does not fit a run of "
                                f"{self.world_size} process(es)")

    @property
    def is_main(self) -> bool:
        """Whether this is process 0, the one that writes checkpoints, logs and the model."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """Whether the run has more than one process."""
        return self.world_size > 1

    def local_batch_size(self, batch_size: int) -> int:
        """This process's share of a total batch of `batch_size` patches.

        Raises
        ------
        PixlearnError
            `batch_size` is not a multiple of the number of processes.
        """
        if batch_size % self.world_size:
            raise PixlearnError(f"the batch size {batch_size} cannot be split evenly over {self.world_size} processes: "
                                f"give a batch size that is a multiple of {self.world_size}")
        return batch_size // self.world_size

    def broadcast_object(self, value: Any) -> Any:
        """The main process's `value`, on every process (pickled between the processes of the run)."""
        if not self.is_distributed:
            return value
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_float(self, value: float) -> float:
        """The main process's `value`, on every process."""
        if not self.is_distributed:
            return float(value)
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device())
        dist.broadcast(tensor, src=0)
        return float(tensor.item())

    def sum_over_ranks(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums of `values` over all processes."""
        if not self.is_distributed:
            return [float(v) for v in values]
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_collective_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return [float(v) for v in tensor.tolist()]

    def any_rank(self, flag: bool) -> bool:
        """Whether `flag` is true on any process."""
        return bool(self.sum_over_ranks([1.0 if flag else 0.0])[0] > 0)

    def sync_buffers(self, module: nn.Module) -> None:
        """Copy the main process's buffers (BatchNorm statistics) into `module` on every process."""
        if self.is_distributed:
            for buffer in module.buffers():
                dist.broadcast(buffer.data, src=0)


def _collective_device() -> torch.device:
    """Where the tensors of a collective live: the current GPU for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def world_from_environment(env: Mapping[str, str]) -> World:
    """The :class:`World` that a launcher such as ``torchrun`` describes in `env`.

    Parameters
    ----------
    env : mapping of str to str
        Usually ``os.environ``: ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and, for ``env://``,
        ``MASTER_ADDR`` and ``MASTER_PORT``.

    Returns
    -------
    world : World
        A single process when `env` names no ``WORLD_SIZE`` (or one of 1).

    Raises
    ------
    PixlearnError
        Values that are not whole numbers, or a distributed run without a rendezvous address.

    Examples
    --------
    >>> world_from_environment({})
    World(rank=0, world_size=1, local_rank=0, init_method='env://')
    >>> env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    >>> world_from_environment(env).local_rank
    1
    """
    try:
        world_size = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        names = ", ".join(f"{k}={env.get(k)!r}" for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK") if k in env)
        raise PixlearnError(f"the launcher's environment is not whole numbers: {names}") from None
    if world_size > 1 and not (env.get("MASTER_ADDR") and env.get("MASTER_PORT")):
        raise PixlearnError(f"WORLD_SIZE={world_size} but MASTER_ADDR or MASTER_PORT is missing: start the processes "
                            "with torchrun (or set both)")
    return World(rank=rank, world_size=world_size, local_rank=local_rank)


@contextlib.contextmanager
def joined(world: World, device: torch.device) -> Iterator[None]:
    """Join the run's process group (NCCL for a GPU `device`, else gloo) for the block; leave it after.

    A process group that the caller already started is used as it is (and left running).

    Raises
    ------
    PixlearnError
        An already started process group of another size or rank.
    """
    if not world.is_distributed:
        yield
        return
    if dist.is_initialized():
        if (dist.get_rank(), dist.get_world_size()) != (world.rank, world.world_size):
            raise PixlearnError(f"a process group of {dist.get_world_size()} processes is already running here, "
                                f"not the {world.world_size} of this run")
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method=world.init_method,
                            rank=world.rank, world_size=world.world_size, timeout=TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def process_device(world: World, device: torch.device) -> torch.device:
    """This process's device: `device` itself, except that in a distributed run on GPUs each
    process takes ``cuda:LOCAL_RANK``.

    Raises
    ------
    PixlearnError
        A distributed run given one numbered GPU, or more processes on a machine than GPUs.
    """
    if not world.is_distributed or device.type != "cuda":
        return device
    if device.index is not None:
        raise PixlearnError(f"--device {device} names one GPU, but each of the {world.world_size} processes takes "
                            "its own (cuda:LOCAL_RANK): give --device cuda")
    count = torch.cuda.device_count()
    if world.local_rank >= count:
        raise PixlearnError(f"process {world.rank} has local rank {world.local_rank} but this machine has {count} "
                            f"GPU(s): start at most {count} process(es) per machine")
    return torch.device("cuda", world.local_rank)


def replicate(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """The module a process trains: `model` itself in a single process, else a copy (with
    :class:`torch.nn.SyncBatchNorm` layers on GPUs), so that `model` keeps its own layer types."""
    if not world.is_distributed:
        return model
    replica = copy.deepcopy(model)
    if device.type == "cuda":
        replica = nn.SyncBatchNorm.convert_sync_batchnorm(replica)
    return replica


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """`module` (already on `device`) in :class:`~torch.nn.parallel.DistributedDataParallel` for a
    distributed run, else itself. The wrapper averages the gradients of the backward pass."""
    if not world.is_distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


class BlockSampler(torch.utils.data.Sampler[int]):
    """Dataset indices ``0..length-1`` in order, in blocks of `block`; process ``r`` of ``N``
    takes blocks ``r, r + N, r + 2N, ...``.

    With `block` the per-process batch size, the ``k``-th batch of process ``r`` is the ``r``-th
    part of the ``k``-th batch of a single process with ``N`` times that batch size.

    Parameters
    ----------
    length : int
        Items of the dataset.
    block : int
        Consecutive items per block.
    world : World

    Examples
    --------
    >>> list(BlockSampler(8, 2, World(rank=1, world_size=2)))
    [2, 3, 6, 7]
    """

    def __init__(self, length: int, block: int, world: World) -> None:
        self.length, self.block, self.world = int(length), int(block), world

    def _starts(self) -> range:
        return range(self.world.rank * self.block, self.length, self.block * self.world.world_size)

    def __iter__(self) -> Iterator[int]:
        for start in self._starts():
            yield from range(start, min(start + self.block, self.length))

    def __len__(self) -> int:
        return sum(min(self.block, self.length - start) for start in self._starts())


__all__ = [
    "TIMEOUT",
    "BlockSampler",
    "World",
    "joined",
    "process_device",
    "replicate",
    "world_from_environment",
    "wrap",
]
