"""Device and precision path of a network: one detector for training and inference.

A *precision path* is the arithmetic (fp32, or bf16 autocast; fp16 with AMP on old GPUs) and the
memory format (contiguous or channels-last) a network runs in (:class:`PrecisionPath`). The
setting (``"auto"``, ``"fp32"`` or ``"bf16"``: ``TrainConfig.precision``,
``NetworkModel.precision``, ``--precision``) is resolved by :func:`resolve_precision`:

* CUDA: ``"auto"`` trains with mixed precision (bf16 where supported, else fp16 with a gradient
  scaler) and predicts in fp32, channels-last for 2D networks.
* CPU: ``"auto"`` takes the timings of each path on this machine
  (:func:`pixlearn.nets.precision_probe.detect_timings`: measured once on a short convolution
  workload, then cached per machine and torch version) and :func:`choose_precision` keeps the
  baseline (fp32 in the memory format pixlearn used before: contiguous for training,
  channels-last for prediction) unless another path is at least 10% faster. bf16 gains a few
  percent on CPUs with ``avx512_bf16`` and much more with AMX, and is several times slower on
  AVX2-only CPUs, so it is measured, never assumed, and never chosen when slower.
* ``"fp32"``/``"bf16"`` force the arithmetic without measuring (the memory format is the
  baseline's, or ``TrainConfig.channels_last`` when that is ``"on"``/``"off"``).

bf16 predictions differ from fp32 ones by rounding: :data:`BF16_TOLERANCE` is the bound the tests
hold a tiny U-Net's probabilities to.

Prediction of a :class:`pixlearn.nets.model.NetworkModel` on a CPU with ``"auto"`` measures the
network itself on its own batch rather than the probe (:mod:`pixlearn.nets.network_probe`), with
more candidates: ``fp32+onnxruntime`` (the engine of :mod:`pixlearn.nets.onnx_engine`) and
``fp32+openvino`` / ``bf16+openvino`` (:mod:`pixlearn.nets.openvino_engine`), where installed; and
:func:`choose_inference_path` prefers the exact (fp32) paths on a near tie.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from pixlearn.errors import PixlearnError
from pixlearn.nets.config import PRECISIONS, SWITCHES
from pixlearn.nets.inference import memory_format
from pixlearn.nets.precision_probe import ENGINE_PATHS, MODES, PATHS, cpu_info, detect_timings, has_native_bf16

logger = logging.getLogger(__name__)

DEFAULT_MARGIN = 0.10
"""Least speed-up (10%) over the baseline for which :func:`choose_precision` takes another path."""

BF16_TOLERANCE = 1e-2
"""Largest absolute difference of bf16 from fp32 probabilities that the tests accept on tiny U-Nets
(bf16 keeps 8 bits of mantissa; measured: about 4e-4 on those, 8e-4 on the 16..256-channel
U-Net of ``benchmarks/apply.py``)."""

ENGINES: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
"""What runs a network: torch, onnxruntime (fp32, contiguous; :mod:`pixlearn.nets.onnx_engine`) or
OpenVINO (fp32 or bf16, contiguous; :mod:`pixlearn.nets.openvino_engine`)."""

FP32_TOLERANCE = 1e-4
"""Largest absolute difference from torch's fp32 outputs that the tests accept of the other fp32
paths (another memory format or onnxruntime: the same arithmetic summed in another order)."""


def resolve_device(device: Any = None) -> torch.device:
    """``device`` as a :class:`torch.device`; ``None`` means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclasses.dataclass(frozen=True)
class PrecisionPath:
    """The arithmetic and memory format a network runs in, and how that was decided.

    Parameters
    ----------
    dtype : {"fp32", "bf16", "fp16"}
        fp32, or autocast to bf16 / fp16 (fp16: CUDA training only, with a gradient scaler).
    channels_last : bool
        Channels-last memory (``channels_last_3d`` for 3D networks).
    source : {"forced", "default", "measured", "cached", "cuda", "fallback"}
        Given by the setting, the only path of the device, chosen from fresh or cached timings
        on this CPU, the CUDA rule, or torch in place of an onnxruntime engine that failed.
    timings : dict of str to float
        Fastest seconds per step of each path, when the choice was measured.
    engine : {"torch", "onnxruntime", "openvino"}
        What runs the network; onnxruntime only in fp32, the outside engines in contiguous memory.

    Raises
    ------
    ValueError
        An unknown engine, onnxruntime with bf16, or an outside engine with channels-last.

    Examples
    --------
    >>> PrecisionPath("bf16", True, "measured").name
    'bf16+channels_last'
    >>> PrecisionPath("fp32", False, "measured", engine="onnxruntime").name
    'fp32+onnxruntime'
    """

    dtype: str
    channels_last: bool
    source: str
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict, compare=False)
    engine: str = "torch"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.engine != "torch" and (self.channels_last or self.dtype not in ("fp32", "bf16")):
            raise ValueError(f"{self.engine} runs fp32 or bf16 in contiguous memory, got {self.dtype}, "
                             f"channels_last={self.channels_last}")
        if self.engine == "onnxruntime" and self.dtype != "fp32":
            raise ValueError(f"onnxruntime runs fp32, got {self.dtype}")

    @property
    def name(self) -> str:
        """``dtype``, with ``+channels_last`` when that is the memory format and ``+<engine>``
        when the engine is not torch."""
        return (self.dtype + ("+channels_last" if self.channels_last else "")
                + ("" if self.engine == "torch" else "+" + self.engine))

    def memory_format(self, ndim: int) -> torch.memory_format:
        """The memory format of tensors and weights for `ndim` spatial axes."""
        return memory_format(ndim) if self.channels_last else torch.contiguous_format

    def autocast(self, device: torch.device) -> Any:
        """The autocast context of this path on `device` (disabled for fp32)."""
        if self.dtype == "fp32":
            return torch.autocast(device.type, enabled=False)
        return torch.autocast(device.type, dtype=torch.bfloat16 if self.dtype == "bf16" else torch.float16)

    def record(self) -> dict[str, Any]:
        """JSON-safe description for model histories and benchmark results."""
        record: dict[str, Any] = {"precision": self.name, "precision_source": self.source}
        if self.timings:
            record["precision_timings_s"] = {k: round(float(v), 6) for k, v in self.timings.items()}
        return record


def choose_precision(
    timings: Mapping[str, float | Sequence[float]], *, baseline: str = "fp32", margin: float = DEFAULT_MARGIN
) -> str:
    """The fastest path that beats `baseline` by at least `margin` in every sample, else `baseline`.

    Pure. A path is taken only when its slowest sample is faster than the baseline's fastest by
    the margin (``slowest * (1 + margin) <= baseline's fastest``), so the result is never slower
    than the baseline and noise (on a busy machine) keeps the baseline. Unusable samples (not
    finite, not positive) rule a path out; an unusable baseline keeps the baseline. Among the
    paths that qualify, the one of the fastest sample wins.

    Parameters
    ----------
    timings : mapping of str to float or sequence of float
        Seconds per step of each path (any names): one figure, or one sample per round.
    baseline : str
        The path to keep unless another is measurably faster; a key of `timings`.
    margin : float
        Least relative speed-up, in ``[0, 1)``.

    Returns
    -------
    path : str

    Raises
    ------
    ValueError
        `baseline` missing from `timings`, or `margin` out of range.

    Examples
    --------
    >>> choose_precision({"fp32": 1.0, "bf16": 0.95})  # 5% faster: within the noise
    'fp32'
    >>> choose_precision({"fp32": 1.0, "bf16": 0.8, "bf16+channels_last": 0.7})
    'bf16+channels_last'
    >>> choose_precision({"fp32": [1.0, 1.1], "bf16": [0.5, 0.95]})  # not faster in every round
    'fp32'
    >>> choose_precision({"fp32": 1.0, "bf16": 11.0})
    'fp32'
    """
    if baseline not in timings:
        raise ValueError(f"no timing for the baseline {baseline!r} among {sorted(timings)}")
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin must be in [0, 1), got {margin}")
    spreads = {name: _spread(t) for name, t in timings.items()}
    reference = spreads[baseline]
    if reference is None:
        return baseline
    faster = {name: spread[0] for name, spread in spreads.items()
              if name != baseline and spread is not None and spread[1] * (1.0 + margin) <= reference[0]}
    return min(faster, key=faster.__getitem__) if faster else baseline


def choose_inference_path(
    timings: Mapping[str, float | Sequence[float]], *, baseline: str, margin: float = DEFAULT_MARGIN
) -> str:
    """:func:`choose_precision` among the exact (fp32) paths first, then bf16 only against the best of them.

    Pure. The fastest fp32 path that beats `baseline` by the margin (another memory format, or
    onnxruntime) is chosen as by :func:`choose_precision`; a bf16 path replaces it only when it
    is in turn faster than that one by the margin in every sample, so that on a near tie the
    more exact path wins. The result is never slower than `baseline`.

    Parameters
    ----------
    timings : mapping of str to float or sequence of float
        Seconds per step of each path (names of :data:`ENGINE_PATHS`).
    baseline : str
        An fp32 path, a key of `timings`.
    margin : float
        Least relative speed-up, in ``[0, 1)``.

    Returns
    -------
    path : str

    Raises
    ------
    ValueError
        `baseline` missing or not fp32, or `margin` out of range.

    Examples
    --------
    >>> timings = {"fp32+channels_last": 0.31, "fp32+onnxruntime": 0.202, "bf16+channels_last": 0.19}
    >>> choose_inference_path(timings, baseline="fp32+channels_last")  # bf16 only 6% faster than ORT
    'fp32+onnxruntime'
    >>> choose_inference_path({**timings, "bf16+channels_last": 0.15}, baseline="fp32+channels_last")
    'bf16+channels_last'
    """
    if not baseline.startswith("fp32"):
        raise ValueError(f"the baseline must be an fp32 path, got {baseline!r}")
    exact = {name: t for name, t in timings.items() if name.startswith("fp32")}
    best = choose_precision(exact, baseline=baseline, margin=margin)
    rounded = {name: t for name, t in timings.items() if not name.startswith("fp32")}
    return choose_precision({best: timings[best], **rounded}, baseline=best, margin=margin)


def _spread(timing: float | Sequence[float]) -> tuple[float, float] | None:
    """Fastest and slowest sample; ``None`` when there is none or one is unusable."""
    samples = [timing] if isinstance(timing, (int, float)) else list(timing)
    try:
        values = [float(t) for t in samples]
    except (TypeError, ValueError):
        return None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        return None
    return min(values), max(values)


def cpu_candidates(precision: str, channels_last: str, *, mode: str, ndim: int) -> tuple[tuple[str, ...], str]:
    """The paths of :data:`PATHS` that a CPU setting leaves open, and the baseline among them.

    The baseline is fp32 (or the forced arithmetic) in the memory format pixlearn used before:
    contiguous for training, channels-last for prediction; a forced `channels_last` replaces
    it. Measured alternatives exist only for ``precision="auto"``; the memory format is
    measured only for 2D networks and when `channels_last` is ``"auto"`` (3D training stays
    contiguous, as channels-last 3D gains nothing there).

    Examples
    --------
    >>> cpu_candidates("auto", "auto", mode="train", ndim=2)
    (('fp32', 'fp32+channels_last', 'bf16', 'bf16+channels_last'), 'fp32')
    >>> cpu_candidates("bf16", "auto", mode="inference", ndim=2)
    (('bf16+channels_last',), 'bf16+channels_last')
    """
    default = mode == "inference"
    if mode == "train" and ndim != 2:
        layouts: tuple[bool, ...] = (False,)
    elif channels_last != "auto":
        layouts = (channels_last == "on",)
    elif precision == "auto" and ndim == 2:
        layouts = (default, not default)
    else:
        layouts = (default,)
    dtypes = ("fp32", "bf16") if precision == "auto" else (precision,)
    names = tuple(d + ("+channels_last" if cl else "") for d in dtypes for cl in layouts)
    return names, names[0]


def resolve_precision(
    precision: str = "auto",
    device: Any = None,
    *,
    mode: str = "train",
    ndim: int = 2,
    channels_last: str = "auto",
    detect: Callable[[str], tuple[dict[str, list[float]], str]] | None = None,
) -> PrecisionPath:
    """The precision path of a setting on `device` (see the module docstring).

    Parameters
    ----------
    precision : {"auto", "fp32", "bf16"}
    device : str or torch.device, optional
        Default CUDA when available, else CPU.
    mode : {"train", "inference"}
    ndim : {2, 3}
        Spatial axes of the network.
    channels_last : {"auto", "on", "off"}
        ``TrainConfig.channels_last`` (prediction: ``"auto"``).
    detect : callable, optional
        ``detect(mode) -> (samples, source)`` (seconds per step of each path of :data:`PATHS`,
        one per round); default
        :func:`pixlearn.nets.precision_probe.detect_timings` (cached, else measured). Called
        only when the setting leaves more than one path open on a CPU.

    Returns
    -------
    path : PrecisionPath

    Raises
    ------
    PixlearnError
        An unknown setting, or bf16 forced on a GPU without bf16.
    """
    if precision not in PRECISIONS or channels_last not in SWITCHES or mode not in MODES:
        raise PixlearnError(f"precision must be one of {PRECISIONS}, channels_last one of {SWITCHES} and mode one "
                            f"of {MODES}; got {precision!r}, {channels_last!r}, {mode!r}")
    device = resolve_device(device)
    if device.type == "cuda":
        return _cuda_path(precision, channels_last, mode=mode, ndim=ndim)
    candidates, baseline = cpu_candidates(precision, channels_last, mode=mode, ndim=ndim)
    forced = precision != "auto"
    if device.type != "cpu" or len(candidates) == 1:
        path = named_path(baseline, "forced" if forced else "default")
        if path.dtype == "bf16" and device.type == "cpu" and not has_native_bf16(cpu_info()[1]):
            logger.warning("bf16 on a CPU without native bf16 (avx512_bf16, amx_bf16): often several times "
                           "slower than fp32; --precision auto measures it")
        return path
    timings, source = (detect_timings if detect is None else detect)(mode)
    chosen = choose_precision({name: timings[name] for name in candidates}, baseline=baseline)
    fastest = {name: min(timings[name]) for name in PATHS if name in timings}
    logger.info("%s precision path %s (%s; fastest seconds per step %s)", mode, chosen, source,
                {name: round(fastest[name], 4) for name in candidates})
    return named_path(chosen, source, fastest)


def named_path(name: str, source: str, timings: Mapping[str, float] | None = None) -> PrecisionPath:
    """The :class:`PrecisionPath` of a path's `name` (``"fp32+channels_last"``, ``"fp32+onnxruntime"``, ...).

    Examples
    --------
    >>> named_path("fp32+onnxruntime", "cached").engine
    'onnxruntime'
    >>> named_path("bf16+openvino", "measured").dtype
    'bf16'
    """
    dtype, *parts = name.split("+")
    unknown = set(parts) - {"channels_last", *ENGINES[1:]}
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)} of the precision path {name!r}")
    engine = next((e for e in ENGINES[1:] if e in parts), "torch")
    return PrecisionPath(dtype, "channels_last" in parts, source, dict(timings or {}), engine)


def _cuda_path(precision: str, channels_last: str, *, mode: str, ndim: int) -> PrecisionPath:
    """CUDA: mixed precision for ``"auto"`` training (bf16, else fp16), fp32 prediction;
    channels-last for 2D training unless switched off, and for prediction."""
    bf16 = torch.cuda.is_bf16_supported()
    if precision == "bf16" and not bf16:
        raise PixlearnError("precision bf16: this GPU has no bf16 arithmetic; use auto (fp16 mixed precision) or fp32")
    if precision == "auto":
        dtype = ("bf16" if bf16 else "fp16") if mode == "train" else "fp32"
    else:
        dtype = precision
    layout = channels_last != "off" and ndim == 2 if mode == "train" else True
    return PrecisionPath(dtype, layout, "forced" if precision != "auto" else "cuda")


__all__ = [
    "BF16_TOLERANCE", "DEFAULT_MARGIN", "ENGINES", "ENGINE_PATHS", "FP32_TOLERANCE", "PATHS", "PrecisionPath",
    "choose_inference_path", "choose_precision", "cpu_candidates", "named_path", "resolve_device",
    "resolve_precision",
]
