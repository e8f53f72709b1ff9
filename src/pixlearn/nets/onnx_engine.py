"""ONNX Runtime as an engine of prediction: a network's eval copy exported in memory and run there.

The ``fp32+onnxruntime`` precision path (:mod:`pixlearn.nets.precision`) runs a network in
onnxruntime's CPU execution provider instead of torch. On larger U-Nets its fused convolutions are
measurably faster than oneDNN through torch on some CPUs (1.3x to 1.5x on the 16..256-channel
U-Net of ``benchmarks/apply.py`` on an AVX-512 machine) and slower on tiny ones, so the path is
only taken where it was measured faster (:mod:`pixlearn.nets.network_probe`).

* :func:`export_onnx` exports the eval copy of :func:`pixlearn.nets.inference.inference_copy`
  (batch norms folded, contiguous memory) to ONNX bytes with dynamic batch and spatial axes, with
  the TorchScript-based exporter. The traced graph has no padding step (the example's sizes are
  multiples of the network's size divisor), so :class:`OnnxEngine` pads the high end of each
  axis by edge replication, as :class:`pixlearn.nets.unet.UNet` does, and crops back.
* :func:`build_engine` makes the session with torch's thread count and returns ``None`` (and a
  warning) when the runtime is missing or the export or the session fails, so that callers fall
  back to torch. The same graph runs in OpenVINO (``runtime="openvino"``, fp32 or bf16; the
  session of :mod:`pixlearn.nets.openvino_engine`).

onnxruntime is optional (the ``exchange`` extra): where it cannot be imported the path is simply
not a candidate (:func:`onnxruntime_version` is ``None``).
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from pixlearn.nets.inference import inference_copy
from pixlearn.nets.openvino_engine import make_openvino_session, openvino_version

logger = logging.getLogger(__name__)

ONNX_OPSET = 17
"""ONNX opset of the graphs exported here (onnxruntime >= 1.13 runs it)."""

_EXAMPLE_SIZE = 2  # the example's spatial size, in multiples of the size divisor


def onnxruntime_version() -> str | None:
    """The version of onnxruntime, or ``None`` where it cannot be imported."""
    module = _onnxruntime()
    return None if module is None else str(module.__version__)


def _onnxruntime() -> Any:
    """The onnxruntime module, or ``None`` where it cannot be imported."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        return None


def export_onnx(module: nn.Module, ndim: int, in_channels: int, divisor: Sequence[int]) -> bytes:
    """The eval copy of `module` as ONNX bytes, with dynamic batch and spatial axes.

    Parameters
    ----------
    module : nn.Module
        A network taking ``(B, in_channels, *S)`` float32 with `ndim` spatial axes.
    ndim : {2, 3}
    in_channels : int
    divisor : sequence of int
        Per-axis size divisor of the network (:func:`pixlearn.nets.unet.size_divisor`); the
        graph takes sizes that are multiples of it.

    Returns
    -------
    model : bytes
        A serialised ``ModelProto`` with input ``x`` and output ``y``, both ``(B, C, *S)``.

    Raises
    ------
    Exception
        Whatever the exporter raises (an operator it cannot express).
    """
    if ndim not in (2, 3) or len(divisor) != ndim:
        raise ValueError(f"ndim must be 2 or 3 with one divisor per axis, got {ndim}, {tuple(divisor)}")
    fast = inference_copy(module, ndim, channels_last=False).cpu()
    example = torch.zeros((1, in_channels) + tuple(_EXAMPLE_SIZE * int(d) for d in divisor))
    dynamic = {0: "b", **{2 + i: f"s{i}" for i in range(ndim)}}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the shape checks of forward
        torch.onnx.export(fast, (example,), buffer,  # type: ignore[arg-type]  # torch takes file objects too
                          dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": dynamic, "y": dynamic}, opset_version=ONNX_OPSET)
    return buffer.getvalue()


RUNTIMES: tuple[str, ...] = ("onnxruntime", "openvino")
"""The runtimes that run an exported graph."""


@dataclasses.dataclass(frozen=True)
class OnnxEngine:
    """A network's exported graph in a runtime, called like the network on ``(B, C, *S)`` arrays.

    Parameters
    ----------
    session : onnxruntime.InferenceSession or OpenVinoSession
        Anything with onnxruntime's ``run(output_names, feeds)``.
    divisor : tuple of int
        Per-axis size divisor: inputs are padded at the high end (edge replication) to
        multiples of it, and the outputs cropped back.
    threads : int
        Intra-op threads of the session (torch's thread count when it was built).
    runtime : {"onnxruntime", "openvino"}
    """

    session: Any
    divisor: tuple[int, ...]
    threads: int
    runtime: str = "onnxruntime"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, K, *S)`` float32 of the network for `x` of shape ``(B, C, *S)`` float32."""
        x = np.asarray(x, dtype=np.float32)
        size = x.shape[2:]
        if len(size) != len(self.divisor):
            raise ValueError(f"expected {len(self.divisor)} spatial axes, got input of shape {x.shape}")
        extra = [(-s) % d for s, d in zip(size, self.divisor)]
        if any(extra):
            x = np.pad(x, [(0, 0), (0, 0)] + [(0, e) for e in extra], mode="edge")
        y = self.session.run(["y"], {"x": np.ascontiguousarray(x)})[0]
        if any(extra):
            y = y[(slice(None), slice(None)) + tuple(slice(0, s) for s in size)]
        return np.asarray(y, dtype=np.float32)


def make_session(model: bytes, threads: int) -> Any:
    """An onnxruntime CPU session of the serialised `model` on `threads` intra-op threads.

    Raises
    ------
    ImportError
        onnxruntime is not installed.
    """
    ort = _onnxruntime()
    if ort is None:
        raise ImportError("onnxruntime is not installed (pip install 'pixlearn[exchange]')")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def runtime_version(runtime: str) -> str | None:
    """The installed version of `runtime` (one of :data:`RUNTIMES`), ``None`` where it cannot be imported."""
    return onnxruntime_version() if runtime == "onnxruntime" else openvino_version()


def build_engine(module: nn.Module, ndim: int, in_channels: int, divisor: Sequence[int], *,
                 threads: int | None = None, runtime: str = "onnxruntime", dtype: str = "fp32",
                 graph: bytes | None = None) -> OnnxEngine | None:
    """`module` exported and loaded in `runtime`, or ``None`` (with a warning) where that fails.

    Parameters
    ----------
    module : nn.Module
    ndim : {2, 3}
    in_channels : int
    divisor : sequence of int
        See :func:`export_onnx`.
    threads : int, optional
        Intra-op threads; default torch's (:func:`torch.get_num_threads`).
    runtime : {"onnxruntime", "openvino"}
    dtype : {"fp32", "bf16"}
        The arithmetic (onnxruntime: fp32 only).
    graph : bytes, optional
        `module` already exported by :func:`export_onnx` (several engines of one network share
        one export); default: exported here.

    Returns
    -------
    engine : OnnxEngine or None
        ``None`` when the runtime is missing, or the export or the session failed (an operator
        the runtime lacks); the caller then predicts with torch.

    Raises
    ------
    ValueError
        An unknown runtime, or onnxruntime asked for another arithmetic than fp32.
    """
    if runtime not in RUNTIMES or (runtime == "onnxruntime" and dtype != "fp32"):
        raise ValueError(f"runtime must be one of {RUNTIMES} (onnxruntime in fp32), got {runtime!r} in {dtype!r}")
    if runtime_version(runtime) is None:
        logger.warning("%s is not installed: predicting with torch", runtime)
        return None
    threads = torch.get_num_threads() if threads is None else int(threads)
    try:
        graph = export_onnx(module, ndim, in_channels, divisor) if graph is None else graph
        session = make_session(graph, threads) if runtime == "onnxruntime" else make_openvino_session(graph, threads, dtype)
    except Exception as exc:  # any failure of the exporter or of the runtime means: use torch
        logger.warning("cannot run this network in %s (%s: %s); predicting with torch",
                       runtime, type(exc).__name__, exc)
        return None
    return OnnxEngine(session, tuple(int(d) for d in divisor), threads, runtime)


__all__ = ["ONNX_OPSET", "RUNTIMES", "OnnxEngine", "build_engine", "export_onnx", "make_session", "onnxruntime_version",
           "runtime_version"]
