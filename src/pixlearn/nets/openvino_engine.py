"""OpenVINO as an engine of prediction: the network's ONNX graph compiled for the CPU.

The ``fp32+openvino`` and ``bf16+openvino`` precision paths (:mod:`pixlearn.nets.precision`) run
the graph that :func:`pixlearn.nets.onnx_engine.export_onnx` exports (batch norms folded) in
OpenVINO's CPU plugin, which fuses convolutions with their activations, skips and
concatenations. Measured on the 16..256-channel U-Net of ``benchmarks/apply.py`` (AVX-512 BF16,
no AMX, 2 threads, batches of 4 tiles of 256²): bf16 in OpenVINO 63 ms against 72 ms for bf16 with
channels-last in torch; fp32 in OpenVINO was slower than torch there. Either is taken only where
the network probe measured it faster (:mod:`pixlearn.nets.network_probe`).

:class:`OpenVinoSession` gives a compiled model the ``run(names, feeds)`` call of an onnxruntime
session, so that :class:`pixlearn.nets.onnx_engine.OnnxEngine` (padding to the size divisor,
cropping back) drives both runtimes. The graph is our own export, never a file read from a user:
nothing outside pixlearn is compiled.

OpenVINO is optional (the ``openvino`` extra): where it cannot be imported its paths are not
candidates (:func:`openvino_version` is ``None``).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}
"""OpenVINO's ``INFERENCE_PRECISION_HINT`` of each path dtype."""


def _openvino() -> Any:
    """The openvino module, or ``None`` where it cannot be imported."""
    try:
        return importlib.import_module("openvino")
    except ImportError:
        return None


def openvino_version() -> str | None:
    """The version of OpenVINO, or ``None`` where it cannot be imported."""
    module = _openvino()
    return None if module is None else str(module.__version__)


@dataclasses.dataclass(frozen=True)
class OpenVinoSession:
    """A compiled OpenVINO model called like an onnxruntime session.

    Parameters
    ----------
    compiled : openvino.CompiledModel
    request : openvino.InferRequest
        The request every call reuses (one thread of pixlearn predicts through an engine at a time).
    """

    compiled: Any
    request: Any

    def run(self, names: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs `names` for the inputs `feeds`, as arrays of their own (OpenVINO reuses the
        memory of its results on the next call)."""
        results = self.request.infer(dict(feeds))
        return [np.array(results[name], copy=True) for name in names]


def make_openvino_session(model: bytes, threads: int, dtype: str) -> OpenVinoSession:
    """An OpenVINO CPU session of the serialised ONNX `model` on `threads` threads.

    Parameters
    ----------
    model : bytes
        An ONNX ``ModelProto`` (:func:`pixlearn.nets.onnx_engine.export_onnx`).
    threads : int
    dtype : {"fp32", "bf16"}
        The arithmetic of the convolutions (``INFERENCE_PRECISION_HINT``).

    Raises
    ------
    ImportError
        OpenVINO is not installed.
    ValueError
        An unknown `dtype`.
    """
    if dtype not in PRECISION_HINTS:
        raise ValueError(f"OpenVINO paths run fp32 or bf16, got {dtype!r}")
    ov = _openvino()
    if ov is None:
        raise ImportError("OpenVINO is not installed (pip install 'pixlearn[openvino]')")
    core = ov.Core()
    graph = core.read_model(model, b"")
    config = {"INFERENCE_PRECISION_HINT": PRECISION_HINTS[dtype], "INFERENCE_NUM_THREADS": int(threads),
              "PERFORMANCE_HINT": "LATENCY"}
    compiled = core.compile_model(graph, "CPU", config)
    return OpenVinoSession(compiled, compiled.create_infer_request())


__all__ = ["PRECISION_HINTS", "OpenVinoSession", "make_openvino_session", "openvino_version"]
