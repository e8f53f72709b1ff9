"""Measuring the precision paths on this machine, and the cache of what was measured.

:func:`measure_paths` times a short convolutional workload (a small U-Net: forward, and backward
for training) along each path of :data:`PATHS` (fp32 or bf16 autocast, contiguous or
channels-last memory), in interleaved rounds so that load from other processes hits every path
alike. Its clock and its workload are arguments, so tests run it on a fake clock.

:func:`detect_timings` reads the timings from a small JSON file per machine and mode under the
user's cache folder (:func:`cache_dir`: ``$PIXLEARN_CACHE_DIR``, else ``~/.cache/pixlearn``), or
measures and writes them (atomically) the first time. The file's key is the CPU model and flags,
torch's CPU capability and version, and the thread count (:func:`machine_key`); a file that
cannot be read, is corrupt or belongs to another key is ignored and measured again, never an
error. The choice itself (:func:`pixlearn.nets.precision.choose_precision`) is not cached: it is
made again from the timings every time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from pixlearn.data.atomic import atomic_path

logger = logging.getLogger(__name__)

PATHS: tuple[str, ...] = ("fp32", "fp32+channels_last", "bf16", "bf16+channels_last")
"""The CPU precision paths: dtype of the arithmetic, then ``+channels_last`` for that memory format."""

ONNX_PATH = "fp32+onnxruntime"
"""The path of the onnxruntime engine (:mod:`pixlearn.nets.onnx_engine`): a candidate of prediction only."""

OPENVINO_PATHS: tuple[str, ...] = ("fp32+openvino", "bf16+openvino")
"""The paths of the OpenVINO engine (:mod:`pixlearn.nets.openvino_engine`): candidates of prediction only."""

ENGINE_PATHS: tuple[str, ...] = PATHS + (ONNX_PATH,) + OPENVINO_PATHS
"""Every path a timing may name: :data:`PATHS`, :data:`ONNX_PATH` and :data:`OPENVINO_PATHS`."""

MODES: tuple[str, ...] = ("train", "inference")

CPU_FLAGS: tuple[str, ...] = (
    "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "sve2", "bf16", "i8mm",
)
"""CPU features that decide how fast fp32 and bf16 convolutions run (x86 and Arm names)."""

NATIVE_BF16_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16", "bf16")

CACHE_FORMAT = "pixlearn-precision-timings"
CACHE_VERSION = 1

_ROUNDS = 3
_BUDGET_S = 10.0
_HOPELESS = 3.0  # a path this many times slower than fp32 after one round is timed no further
_PROBE_BATCH, _PROBE_SIZE = 2, 96


# --------------------------------------------------------------------------------------------
# the machine


def cpu_info(path: str | os.PathLike[str] = "/proc/cpuinfo") -> tuple[str, tuple[str, ...]]:
    """The CPU's model name and which of :data:`CPU_FLAGS` it has.

    Parameters
    ----------
    path : path-like
        A ``/proc/cpuinfo``-style file; where it cannot be read (not Linux), the model is
        :func:`platform.processor` and no flag is known.

    Returns
    -------
    model : str
    flags : tuple of str
        In the order of :data:`CPU_FLAGS`.
    """
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), ()
    model, found = "", set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name in ("model name", "cpu model", "hardware") and not model:
            model = value.strip()
        elif name in ("flags", "features"):
            found.update(value.split())
    return model or platform.machine(), tuple(f for f in CPU_FLAGS if f in found)


def machine_key() -> dict[str, Any]:
    """What the timings depend on: CPU model and flags, torch's CPU capability and version, threads."""
    model, flags = cpu_info()
    return {"cpu": model, "flags": list(flags), "capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def cache_dir() -> Path:
    """The user's cache folder of pixlearn: ``$PIXLEARN_CACHE_DIR``, else ``~/.cache/pixlearn``."""
    configured = os.environ.get("PIXLEARN_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "pixlearn"


def cache_file(key: Mapping[str, Any], mode: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """The timings file of `key` and `mode` in `directory` (default :func:`cache_dir`)."""
    digest = hashlib.sha256(json.dumps(dict(key), sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir() if directory is None else directory) / f"precision-{mode}-{digest}.json"


# --------------------------------------------------------------------------------------------
# measuring


def measure_paths(
    mode: str = "train",
    *,
    paths: Sequence[str] = PATHS,
    clock: Callable[[], float] = time.perf_counter,
    prepare: Callable[[str, str], Callable[[], None]] | None = None,
    rounds: int = _ROUNDS,
    budget_s: float = _BUDGET_S,
    baseline: str | None = None,
    margin: float = 0.10,
) -> dict[str, list[float]]:
    """Seconds of one step of the workload along each path, one sample per round.

    Each path's step is prepared and run once untimed (warm-up), then the paths are timed in
    interleaved rounds, so that load from other processes hits every path alike. The fp32 paths
    (the baselines of :func:`pixlearn.nets.precision.choose_precision`) are timed in every
    round; another path more than 3x slower than the fastest fp32 one after the first round is
    not timed again (it cannot be chosen; bf16 without native support is often 10x slower). With
    a `baseline`, only that path is timed in every round, and another one is dropped as soon as
    it can no longer be chosen by :func:`pixlearn.nets.precision.choose_precision`'s rule (its
    slowest sample times ``1 + margin`` above the baseline's fastest). No round starts once
    `budget_s` is spent (on a busy machine).

    Parameters
    ----------
    mode : {"train", "inference"}
        ``"train"``: forward and backward of a small U-Net; ``"inference"``: forward of its
        eval-only copy (:func:`pixlearn.nets.inference.inference_copy`).
    paths : sequence of str
        Names of :data:`ENGINE_PATHS` (:data:`ONNX_PATH` with a `prepare` that runs it).
    clock : callable
        Seconds now (default :func:`time.perf_counter`); tests pass a fake one.
    prepare : callable, optional
        ``prepare(mode, path)`` returns the step to time; default :func:`conv_workload`.
    rounds : int
        Most rounds (at least one is timed).
    budget_s : float
        Seconds (of `clock`, warm-up included) after which no new round starts.
    baseline : str, optional
        A name of `paths`: drop the others once they cannot beat it by `margin` (see above).
    margin : float
        The least speed-up over `baseline` that a path must still be able to show.

    Returns
    -------
    samples : dict of str to list of float
        Seconds per step, per path and round.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    unknown = sorted(set(paths) - set(ENGINE_PATHS))
    if unknown or rounds < 1 or not paths:
        raise ValueError(f"paths must be among {ENGINE_PATHS} and rounds >= 1, got {list(paths)}, {rounds}")
    if baseline is not None and baseline not in paths:
        raise ValueError(f"the baseline {baseline!r} is not among the paths {list(paths)}")
    prepare = conv_workload if prepare is None else prepare
    started = clock()
    steps = {name: prepare(mode, name) for name in paths}
    for step in steps.values():
        step()  # warm-up: oneDNN primitive cache, allocator
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for round_index in range(rounds):
        if round_index and clock() - started > budget_s:
            break
        for name, step in steps.items():
            start = clock()
            step()
            samples[name].append(clock() - start)
        kept = _contenders(samples, baseline, margin)
        steps = {n: s for n, s in steps.items() if n in kept}
    return samples


def _contenders(samples: Mapping[str, Sequence[float]], baseline: str | None, margin: float) -> set[str]:
    """The paths worth another round: every fp32 one and those within 3x of the fastest fp32
    one; with a `baseline`, it and those whose slowest sample still beats its fastest by `margin`."""
    timed = {n: s for n, s in samples.items() if s}
    if baseline is not None:
        best = min(timed[baseline])
        return {n for n, s in timed.items() if n == baseline or max(s) * (1.0 + margin) <= best}
    fp32 = [min(s) for n, s in timed.items() if n.startswith("fp32")] or [min(min(s) for s in timed.values())]
    return {n for n, s in timed.items() if n.startswith("fp32") or min(s) <= _HOPELESS * min(fp32)}


def conv_workload(mode: str, path: str) -> Callable[[], None]:
    """One step of a small U-Net (depth 2, 16 channels, ``2 x 96 x 96`` input) along `path`."""
    from pixlearn.nets.inference import inference_copy
    from pixlearn.nets.unet import UNet, UNetConfig

    dtype, _, layout = path.partition("+")
    memory = torch.channels_last if layout else torch.contiguous_format
    with torch.random.fork_rng(devices=[]):  # no draw from the caller's random stream
        torch.manual_seed(0)
        net = UNet(UNetConfig(ndim=2, in_channels=1, out_channels=2, depth=2, base_channels=16))
        x = torch.randn(_PROBE_BATCH, 1, _PROBE_SIZE, _PROBE_SIZE).contiguous(memory_format=memory)
    enabled = dtype == "bf16"
    if mode == "inference":
        fast = inference_copy(net.eval(), 2, channels_last=bool(layout))

        def infer() -> None:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
                fast(x)

        return infer
    net.train().to(memory_format=memory)  # type: ignore[call-overload]  # omitted by torch's stubs

    def train_step() -> None:
        for p in net.parameters():
            p.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            out = net(x)
        out.float().square().mean().backward()

    return train_step


# --------------------------------------------------------------------------------------------
# the cache


def read_timings(
    path: str | os.PathLike[str], key: Mapping[str, Any], mode: str, *,
    paths: Sequence[str] = PATHS, required: Sequence[str] | None = None,
) -> dict[str, list[float]] | None:
    """The timing samples stored in `path` for `key` and `mode`; ``None`` when missing,
    unreadable, corrupt, for another key, or naming a path outside `paths` or lacking one of
    `required` (default: all of `paths`); never an error."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        logger.warning("ignoring the unreadable precision cache %s (%s); measuring again", path, exc)
        return None
    timings = data.get("timings") if isinstance(data, dict) else None
    valid = (
        isinstance(data, dict) and data.get("format") == CACHE_FORMAT and data.get("version") == CACHE_VERSION
        and data.get("key") == dict(key) and data.get("mode") == mode and isinstance(timings, dict)
        and set(required if required is not None else paths) <= set(timings) <= set(paths)
        and all(_samples_ok(t) for t in timings.values())
    )
    if not valid or not isinstance(timings, dict):
        logger.warning("ignoring the precision cache %s (not a timings file of this machine); measuring again", path)
        return None
    return {name: [float(t) for t in timings[name]] for name in paths if name in timings}


def _samples_ok(samples: Any) -> bool:
    """A non-empty list of finite positive seconds."""
    return isinstance(samples, list) and bool(samples) and all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < math.inf for t in samples)


def write_timings(
    path: str | os.PathLike[str], key: Mapping[str, Any], mode: str, timings: Mapping[str, Sequence[float]]
) -> bool:
    """Write the timings (of every path they name) atomically (temporary file, then rename);
    ``False`` (and a warning) when the folder cannot be written, which only means measuring
    again next time."""
    path = Path(path)
    payload = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "key": dict(key), "mode": mode,
               "timings": {name: [float(t) for t in samples] for name, samples in timings.items()},
               "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(payload, indent=2) + "\n")
    except OSError as exc:
        logger.warning("cannot write the precision cache %s (%s); it will be measured again", path, exc)
        return False
    return True


def detect_timings(
    mode: str,
    *,
    directory: str | os.PathLike[str] | None = None,
    measure: Callable[[str], dict[str, list[float]]] | None = None,
) -> tuple[dict[str, list[float]], str]:
    """Timing samples of every path of :data:`PATHS` for `mode` on this machine: cached, else measured.

    Parameters
    ----------
    mode : {"train", "inference"}
    directory : path-like, optional
        Cache folder (default :func:`cache_dir`).
    measure : callable, optional
        ``measure(mode) -> samples`` (default :func:`measure_paths`).

    Returns
    -------
    timings : dict of str to list of float
        Seconds per step of each path, one per round timed.
    source : {"cached", "measured"}
    """
    key = machine_key()
    path = cache_file(key, mode, directory)
    cached = read_timings(path, key, mode)
    if cached is not None:
        return cached, "cached"
    with _logged_duration(key):
        timings = (measure_paths if measure is None else measure)(mode)
    if set(timings) != set(PATHS) or not all(_samples_ok(list(t)) for t in timings.values()):
        raise ValueError(f"the measurement must give samples of {PATHS}, got {timings}")
    write_timings(path, key, mode, timings)
    return {name: [float(t) for t in timings[name]] for name in PATHS}, "measured"


@contextlib.contextmanager
def _logged_duration(key: Mapping[str, Any]) -> Iterator[None]:
    start = time.perf_counter()
    yield
    logger.info("measured the precision paths on %s (%s threads) in %.1f s", key["cpu"], key["threads"],
                time.perf_counter() - start)


def has_native_bf16(flags: Sequence[str]) -> bool:
    """Whether the CPU flags include bf16 arithmetic (:data:`NATIVE_BF16_FLAGS`)."""
    return any(f in flags for f in NATIVE_BF16_FLAGS)


__all__ = [
    "CPU_FLAGS", "ENGINE_PATHS", "MODES", "ONNX_PATH", "PATHS", "cache_dir", "cache_file", "conv_workload", "cpu_info", "detect_timings",
    "has_native_bf16", "machine_key", "measure_paths", "read_timings", "write_timings",
]
