"""The prediction path of a real network, measured on that network and its own batch, once.

The probe of :mod:`pixlearn.nets.precision_probe` (a depth-2, 16-channel U-Net on ``2 x 96 x 96``)
misjudges real networks: on one AVX-512 machine it found bf16 no faster, while the
16..256-channel U-Net of ``benchmarks/apply.py`` ran 1.6x faster in bf16 and 1.5x faster in
onnxruntime, which loses on the probe. So prediction with ``precision="auto"`` on a CPU times the
model's own eval copy on the shape of the first batch it predicts, along every candidate path
(:func:`network_candidates`: fp32 and bf16, contiguous or channels-last, ``fp32+onnxruntime``
where onnxruntime is installed, ``fp32+openvino`` and ``bf16+openvino`` where OpenVINO is), and
:func:`pixlearn.nets.precision.choose_inference_path` decides.

The timings are cached in the folder of the probe's timings (:func:`pixlearn.nets.precision_probe.cache_dir`)
under a key of the machine (:func:`pixlearn.nets.precision_probe.machine_key`: CPU, torch version,
threads), onnxruntime's and OpenVINO's versions, a digest of the architecture and the batch shape
(:func:`network_key`); a corrupt file is measured again. Training keeps the probe.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from pixlearn.nets.inference import inference_copy
from pixlearn.nets.onnx_engine import OnnxEngine, build_engine, export_onnx, onnxruntime_version
from pixlearn.nets.openvino_engine import openvino_version
from pixlearn.nets.precision import (
    DEFAULT_MARGIN,
    PrecisionPath,
    choose_inference_path,
    cpu_candidates,
    named_path,
    resolve_device,
    resolve_precision,
)
from pixlearn.nets.precision_probe import (
    ONNX_PATH,
    OPENVINO_PATHS,
    cache_file,
    cpu_info,
    has_native_bf16,
    machine_key,
    measure_paths,
    read_timings,
    write_timings,
)

logger = logging.getLogger(__name__)

CACHE_MODE = "network"
"""The `mode` of the network timings' cache files (``precision-network-<digest>.json``)."""

BUDGET_S = 5.0
"""Seconds (warm-up and export included) after which no new round of the measurement starts."""

ROUNDS = 3

Detector = Callable[[Sequence[str]], tuple[dict[str, list[float]], str]]
"""``detect(paths) -> (samples, source)``: seconds per batch of each path that could run."""


def architecture_digest(architecture: Mapping[str, Any]) -> str:
    """A short hash of a JSON-safe architecture description (e.g. ``UNetConfig.to_dict()``).

    Examples
    --------
    >>> architecture_digest({"depth": 2}) == architecture_digest({"depth": 2})
    True
    >>> architecture_digest({"depth": 2}) == architecture_digest({"depth": 3})
    False
    """
    text = json.dumps(dict(architecture), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def network_key(architecture: Mapping[str, Any], batch_shape: Sequence[int]) -> dict[str, Any]:
    """What a network's timings depend on: the machine, the outside runtimes, the architecture, the batch.

    Parameters
    ----------
    architecture : mapping
        JSON-safe description of the network (``UNetConfig.to_dict()``).
    batch_shape : sequence of int
        ``(B, C, *S)`` of the batch timed.
    """
    return {**machine_key(), "onnxruntime": onnxruntime_version(), "openvino": openvino_version(),
            "architecture": architecture_digest(architecture), "batch_shape": [int(n) for n in batch_shape]}


def network_candidates(ndim: int, *, flags: Sequence[str], onnxruntime: bool,
                       openvino: bool = False) -> tuple[tuple[str, ...], str]:
    """The paths measured for prediction on a CPU, and the baseline among them.

    bf16 is a candidate only on CPUs with native bf16 (:func:`pixlearn.nets.precision_probe.has_native_bf16`;
    elsewhere it is several times slower); ``fp32+onnxruntime`` only where onnxruntime imports,
    the OpenVINO paths only where OpenVINO does.

    Examples
    --------
    >>> network_candidates(2, flags=("avx2",), onnxruntime=True)
    (('fp32+channels_last', 'fp32', 'fp32+onnxruntime'), 'fp32+channels_last')
    >>> network_candidates(3, flags=("avx512_bf16",), onnxruntime=False)
    (('fp32+channels_last', 'bf16+channels_last'), 'fp32+channels_last')
    >>> network_candidates(3, flags=("avx2",), onnxruntime=False, openvino=True)
    (('fp32+channels_last', 'fp32+openvino'), 'fp32+channels_last')
    """
    names, baseline = cpu_candidates("auto", "auto", mode="inference", ndim=ndim)
    names += ((ONNX_PATH,) if onnxruntime else ()) + (OPENVINO_PATHS if openvino else ())
    if not has_native_bf16(flags):
        names = tuple(n for n in names if not n.startswith("bf16"))
    return names, baseline


def network_steps(net: nn.Module, ndim: int, batch_shape: Sequence[int], divisor: Sequence[int],
                  paths: Sequence[str]) -> dict[str, Callable[[], None]]:
    """One batch of `net`'s prediction along each path that can run (an outside engine that
    cannot be built or fails on one sample of the batch is left out, with a warning)."""
    with torch.random.fork_rng(devices=[]):  # no draw from the caller's random stream
        torch.manual_seed(0)
        x = torch.randn(*batch_shape)
    steps: dict[str, Callable[[], None]] = {}
    graph = _shared_export(net, ndim, int(batch_shape[1]), divisor, [named_path(n, "measured") for n in paths])
    for name in paths:
        path = named_path(name, "measured")
        if path.engine != "torch":
            engine = None if graph is None else build_engine(
                net, ndim, int(batch_shape[1]), divisor, runtime=path.engine, dtype=path.dtype, graph=graph)
            if engine is not None and _runs(engine, x.numpy()[:1]):
                steps[name] = _onnx_step(engine, x.numpy())
            continue
        steps[name] = _torch_step(net, ndim, x, path)
    return steps


def _shared_export(net: nn.Module, ndim: int, in_channels: int, divisor: Sequence[int],
                   paths: Sequence[PrecisionPath]) -> bytes | None:
    """The ONNX graph every outside engine of `paths` runs, exported once; ``None`` when no path
    needs it, or the export fails (one warning: none of those paths is measured)."""
    outside = sorted({path.engine for path in paths if path.engine != "torch"})
    if not outside:
        return None
    try:
        return export_onnx(net, ndim, in_channels, divisor)
    except Exception as exc:  # the exporter's errors have no common base class
        logger.warning("cannot export this network to ONNX (%s: %s): %s not measured", type(exc).__name__, exc,
                       " and ".join(outside))
        return None


def _runs(engine: OnnxEngine, x: np.ndarray) -> bool:
    """Whether `engine` runs on `x` (else a warning: the path is not measured)."""
    try:
        engine(x)
    except Exception as exc:  # the runtimes' errors have no common base class
        logger.warning("%s failed on this network (%s: %s); not a candidate", engine.runtime, type(exc).__name__, exc)
        return False
    return True


def _onnx_step(engine: OnnxEngine, x: np.ndarray) -> Callable[[], None]:
    def step() -> None:
        engine(x)

    return step


def _torch_step(net: nn.Module, ndim: int, x: torch.Tensor, path: PrecisionPath) -> Callable[[], None]:
    fast = inference_copy(net, ndim, channels_last=path.channels_last)
    x = x.contiguous(memory_format=path.memory_format(ndim))
    device = torch.device("cpu")

    def step() -> None:
        with torch.inference_mode(), path.autocast(device):
            fast(x)

    return step


def measure_network(net: nn.Module, ndim: int, batch_shape: Sequence[int], divisor: Sequence[int],
                    paths: Sequence[str], *, baseline: str, budget_s: float = BUDGET_S) -> dict[str, list[float]]:
    """Seconds per batch of `net` along `paths` (:func:`pixlearn.nets.precision_probe.measure_paths`:
    interleaved rounds, at most :data:`ROUNDS` within `budget_s`; a path is timed again only while
    it can still beat `baseline` by the margin of :func:`pixlearn.nets.precision.choose_precision`)."""
    steps = network_steps(net, ndim, batch_shape, divisor, paths)
    return measure_paths("inference", paths=tuple(steps), prepare=lambda mode, name: steps[name], rounds=ROUNDS,
                         budget_s=budget_s, baseline=baseline, margin=DEFAULT_MARGIN)


def detect_network_timings(
    architecture: Mapping[str, Any],
    batch_shape: Sequence[int],
    paths: Sequence[str],
    measure: Callable[[Sequence[str]], dict[str, list[float]]],
    *,
    baseline: str,
    directory: Any = None,
) -> tuple[dict[str, list[float]], str]:
    """Timings of a network's `paths` on its batch: cached (:func:`network_key`), else measured.

    Parameters
    ----------
    architecture : mapping
    batch_shape : sequence of int
    paths : sequence of str
        The candidates (:func:`network_candidates`).
    measure : callable
        ``measure(paths) -> samples`` of the paths that could run (at least `baseline`).
    baseline : str
        The path every cached or measured timing must include.
    directory : path-like, optional
        Cache folder (default :func:`pixlearn.nets.precision_probe.cache_dir`).

    Returns
    -------
    timings : dict of str to list of float
    source : {"cached", "measured"}
    """
    key = network_key(architecture, batch_shape)
    path = cache_file(key, CACHE_MODE, directory)
    cached = read_timings(path, key, CACHE_MODE, paths=paths, required=(baseline,))
    if cached is not None:
        return cached, "cached"
    timings = measure(paths)
    if baseline not in timings or not set(timings) <= set(paths):
        raise ValueError(f"the measurement must time {baseline!r} and only paths of {list(paths)}, got {sorted(timings)}")
    write_timings(path, key, CACHE_MODE, timings)
    return {name: [float(t) for t in samples] for name, samples in timings.items()}, "measured"


def resolve_network_path(precision: str, device: Any, *, ndim: int, detect: Detector) -> PrecisionPath:
    """The prediction path of a network: measured by `detect` for ``"auto"`` on a CPU, else
    :func:`pixlearn.nets.precision.resolve_precision`'s (forced settings, CUDA: nothing measured).

    Parameters
    ----------
    precision : {"auto", "fp32", "bf16"}
    device : str or torch.device, optional
    ndim : {2, 3}
    detect : callable
        ``detect(paths) -> (samples, source)`` for the candidates of :func:`network_candidates`.

    Returns
    -------
    path : PrecisionPath
    """
    device = resolve_device(device)
    if precision != "auto" or device.type != "cpu":
        return resolve_precision(precision, device, mode="inference", ndim=ndim)
    candidates, baseline = network_candidates(ndim, flags=cpu_info()[1], onnxruntime=onnxruntime_version() is not None,
                                              openvino=openvino_version() is not None)
    timings, source = detect(candidates)
    usable = {name: timings[name] for name in candidates if name in timings}
    chosen = choose_inference_path(usable, baseline=baseline)
    fastest = {name: min(samples) for name, samples in usable.items()}
    logger.info("prediction path %s (%s; fastest seconds per batch %s)", chosen, source,
                {name: round(t, 4) for name, t in fastest.items()})
    return named_path(chosen, source, fastest)


def network_path(net: nn.Module, architecture: Mapping[str, Any], precision: str, device: Any, *,
                 ndim: int, divisor: Sequence[int], batch_shape: Sequence[int]) -> PrecisionPath:
    """:func:`resolve_network_path` with the cached measurement of `net` on `batch_shape`
    (``(B, C, *S)``), the detector :class:`pixlearn.nets.model.NetworkModel` uses."""
    shape = tuple(int(n) for n in batch_shape)

    def detect(paths: Sequence[str]) -> tuple[dict[str, list[float]], str]:
        baseline = network_candidates(ndim, flags=(), onnxruntime=False)[1]
        return detect_network_timings(architecture, shape, paths,
                                      lambda todo: measure_network(net, ndim, shape, divisor, todo,
                                                                   baseline=baseline),
                                      baseline=baseline)

    return resolve_network_path(precision, device, ndim=ndim, detect=detect)


def nominal_batch(in_channels: int, divisor: Sequence[int]) -> tuple[int, ...]:
    """A batch shape to measure on before any batch was seen: one tile of about 256 pixels
    (2D) or 64 voxels (3D) per axis, rounded up to the divisor.

    Examples
    --------
    >>> nominal_batch(1, (16, 16))
    (1, 1, 256, 256)
    """
    side = 256 if len(divisor) == 2 else 64
    return (1, int(in_channels)) + tuple(int(np.ceil(side / d)) * int(d) for d in divisor)


def probe_batch(batch_shape: Sequence[int], divisor: Sequence[int]) -> tuple[int, ...]:
    """The batch shape a path is measured on for a first batch of `batch_shape` ``(B, C, *S)``:
    its own, each spatial axis at least that of :func:`nominal_batch`, so that a tiny first block
    (the engine's memory check, a small image) does not decide the path for every tile after it.

    Examples
    --------
    >>> probe_batch((1, 1, 16, 16), (16, 16))
    (1, 1, 256, 256)
    >>> probe_batch((4, 1, 512, 200), (16, 16))
    (4, 1, 512, 256)
    """
    nominal = nominal_batch(int(batch_shape[1]), divisor)
    return (int(batch_shape[0]), int(batch_shape[1])) + tuple(
        max(int(n), int(m)) for n, m in zip(batch_shape[2:], nominal[2:]))


__all__ = [
    "BUDGET_S", "CACHE_MODE", "Detector", "ROUNDS", "architecture_digest", "detect_network_timings",
    "measure_network", "network_candidates", "network_key", "network_path", "network_steps", "nominal_batch", "probe_batch",
    "resolve_network_path",
]
