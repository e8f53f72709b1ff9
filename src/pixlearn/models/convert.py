"""Weights of a pixlearn network in other formats: TorchScript and ONNX files, and the state dict.

Every function imports torch inside (the models room imports torch only lazily). The converted
networks include the task's output activation (:mod:`pixlearn.models.bioimageio_arch`), so they
return what :meth:`pixlearn.nets.model.NetworkModel.predict_batch` returns, in ``(B, K, *S)``
layout.

TorchScript and ONNX are traced with an input whose spatial size is a multiple of the network's
size divisor: the traced graphs have no padding step, so they take exactly such sizes (the
bioimage.io axes are parameterised accordingly); pixlearn's own module pads any size itself.
"""

from __future__ import annotations

import os
import sys
import types
import warnings
from typing import Any

import numpy as np

from pixlearn.models.bioimageio_arch import ACTIVATIONS, ARCHITECTURE_FILE, architecture_source

#: ONNX opset of the exported graphs (onnxruntime >= 1.13, deepImageJ/ilastik read it).
ONNX_OPSET = 17


def architecture_module() -> types.ModuleType:
    """The package's architecture file as a module (pixlearn's own source text, never a package's).

    Registered in :data:`sys.modules` as ``pixlearn_unet`` (dataclasses resolve their annotations
    there); the same module object is returned on later calls.
    """
    name = "pixlearn_unet"
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.__file__ = ARCHITECTURE_FILE
        sys.modules[name] = module
        try:
            exec(compile(architecture_source(), ARCHITECTURE_FILE, "exec"), module.__dict__)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def exportable_module(model: Any) -> Any:
    """The network of a :class:`~pixlearn.nets.model.NetworkModel` wrapped with its activation.

    Built from :func:`~pixlearn.models.bioimageio_arch.architecture_source` (the code shipped in
    the package), so that the state dict written is the one that file loads.

    Returns
    -------
    module : torch.nn.Module
        In eval mode, on the CPU, ``(B, C, *S) -> (B, K, *S)``.
    """
    import torch

    kwargs = model.unet.to_dict()
    module = architecture_module().PixlearnUNet(activation=ACTIVATIONS[model.task], **kwargs)
    state = {f"net.{k}": v for k, v in model.state_dict().items()}
    module.load_state_dict(state, strict=True)
    return module.to(torch.device("cpu")).eval()


def state_dict_for_package(model: Any) -> dict[str, Any]:
    """The state dict of :func:`exportable_module` (keys prefixed ``net.``), CPU tensors."""
    return {f"net.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_state_dict(model: Any, path: str | os.PathLike[str]) -> None:
    """Write the package's ``pytorch_state_dict`` weights (``torch.save`` of tensors only)."""
    import torch

    torch.save(state_dict_for_package(model), os.fspath(path))


def save_torchscript(model: Any, example: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Trace the network with `example` ``(B, C, *S)`` and save it as TorchScript.

    Parameters
    ----------
    model : NetworkModel
    example : ndarray of shape (B, C, M, N) or (B, C, P, M, N), float32
        Spatial sizes must be multiples of the size divisor (see the module docstring).
    path : path-like
    """
    import torch

    module = exportable_module(model)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings: the graph is checked by the tests
        traced = torch.jit.trace(module, torch.from_numpy(np.ascontiguousarray(example, np.float32)))
        traced.save(os.fspath(path))


def save_onnx(model: Any, example: np.ndarray, path: str | os.PathLike[str], *,
              input_name: str = "input", output_name: str = "output") -> None:
    """Export the network to ONNX with dynamic batch and spatial axes.

    Uses the TorchScript-based exporter (``dynamo=False``), which needs no ``onnxscript``.

    Parameters
    ----------
    model : NetworkModel
    example : ndarray of shape (B, C, M, N) or (B, C, P, M, N), float32
    path : path-like
    input_name, output_name : str
        Graph input and output names (the bioimage.io tensor ids).
    """
    import torch

    module = exportable_module(model)
    ndim = example.ndim - 2
    dynamic = {0: "batch", **{2 + i: f"s{i}" for i in range(ndim)}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (torch.from_numpy(np.ascontiguousarray(example, np.float32)),), os.fspath(path),
            dynamo=False, input_names=[input_name], output_names=[output_name],
            dynamic_axes={input_name: dynamic, output_name: dynamic}, opset_version=ONNX_OPSET,
        )
