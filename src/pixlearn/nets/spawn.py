"""Local processes that form one distributed run: :func:`spawn_local` (``pixlearn train --ddp N``).

Each process is started afresh (the ``"spawn"`` start method: no state of the parent is
inherited), meets the others on a free TCP port of ``127.0.0.1`` and runs one function with its
:class:`pixlearn.nets.distributed.World`. How each process ended comes back through a pipe: a
:class:`~pixlearn.errors.PixlearnError` (bad input) is raised again as one, anything else as a
``RuntimeError`` with the process's traceback; the first failure stops the other processes.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import socket
import traceback
from collections.abc import Callable
from typing import Any

from pixlearn.errors import PixlearnError
from pixlearn.nets.distributed import World


def spawn_local(fn: Callable[[Any, World], Any], payload: Any, nprocs: int) -> Any:
    """Run ``fn(payload, world)`` in `nprocs` new local processes that form one run; return rank 0's result.

    The processes meet on a free TCP port of ``127.0.0.1``. `fn` and `payload` must be picklable
    (a module-level function and plain data): each process is started afresh ("spawn"). When one
    process fails, the others are stopped.

    Parameters
    ----------
    fn : callable
        ``fn(payload, world)``; it joins the process group itself (:func:`pixlearn.nets.distributed.joined`).
    payload : object
    nprocs : int
        Number of processes, at least 1.

    Returns
    -------
    result : object
        What `fn` returned in process 0.

    Raises
    ------
    PixlearnError
        A process raised one (bad input): its message.
    RuntimeError
        A process failed otherwise, or died; with its traceback.
    """
    if nprocs < 1:
        raise PixlearnError(f"--ddp needs at least 1 process, got {nprocs}")
    context = multiprocessing.get_context("spawn")
    init_method = f"tcp://127.0.0.1:{_free_port()}"
    processes, links = [], []
    try:
        for rank in range(nprocs):
            receiver, sender = context.Pipe(duplex=False)
            world = World(rank=rank, world_size=nprocs, local_rank=rank, init_method=init_method)
            process = context.Process(target=_run_rank, args=(fn, payload, world, sender), name=f"pixlearn-rank-{rank}")
            process.start()
            sender.close()
            processes.append(process)
            links.append(receiver)
        outcomes, first_failure = _collect(processes, links)
    except BaseException:  # Ctrl-C included: no process outlives the call
        _stop(processes, terminate=True)
        raise
    _stop(processes)
    return _result(outcomes, first_failure, nprocs)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_rank(fn: Callable[[Any, World], Any], payload: Any, world: World, sender: Any) -> None:
    """The body of one spawned process: run `fn` and send back how it ended."""
    try:
        outcome: tuple[str, Any] = ("ok", fn(payload, world))
    except PixlearnError as exc:
        outcome = ("user", str(exc))
    except Exception:  # reported to the parent, which raises it
        outcome = ("bug", traceback.format_exc())
    sender.send(outcome)
    sender.close()


def _collect(processes: list[Any], links: list[Any]) -> tuple[dict[int, tuple[str, Any]], int | None]:
    """Each process's outcome (``("died", exit code)`` for one that sent none) and the rank that
    failed first; on the first failure the other processes are stopped."""
    outcomes: dict[int, tuple[str, Any]] = {}
    first_failure: int | None = None
    waiting = dict(enumerate(links))
    while waiting:
        for ready in multiprocessing.connection.wait(list(waiting.values())):
            rank = links.index(ready)
            try:
                outcomes[rank] = links[rank].recv()
            except EOFError:
                processes[rank].join(timeout=10)
                outcomes[rank] = ("died", processes[rank].exitcode)
            del waiting[rank]
            if outcomes[rank][0] != "ok" and first_failure is None:
                first_failure = rank
                _stop(processes, terminate=True)
    return outcomes, first_failure


def _stop(processes: list[Any], terminate: bool = False) -> None:
    for process in processes:
        if terminate and process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()


def _result(outcomes: dict[int, tuple[str, Any]], first_failure: int | None, nprocs: int) -> Any:
    """Rank 0's result, or the first failure raised."""
    if first_failure is None:
        return outcomes[0][1]
    kind, detail = outcomes[first_failure]
    where = f"training process {first_failure} of {nprocs}"
    if kind == "user":
        raise PixlearnError(f"{where}: {detail}")
    if kind == "died":
        raise RuntimeError(f"{where} died (exit code {detail})")
    raise RuntimeError(f"{where} failed:\n{detail}")


__all__ = ["spawn_local"]
