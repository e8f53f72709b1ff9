"""The architecture source shipped in pixlearn's bioimage.io packages, and how to recognise it.

A bioimage.io ``pytorch_state_dict`` weight entry names a Python file and a callable in it that
builds the network. pixlearn's file is made from its own modules, not written by hand:
:mod:`pixlearn.nets.config` (for ``UNetConfig``) and :mod:`pixlearn.nets.unet` (the U-Net), their
``pixlearn`` imports replaced, followed by :class:`PixlearnUNet`, a wrapper that applies the task's
output activation (softmax for semantic, sigmoid for instances, none for restoration), so that the
package's outputs are what :meth:`pixlearn.nets.model.NetworkModel.predict_batch` returns. The file
needs only torch, so any bioimage.io consumer with PyTorch can run it without pixlearn.

When pixlearn imports a package it never runs that file: it checks that the architecture names
:data:`ARCHITECTURE_CALLABLE` with keyword arguments that form a valid ``UNetConfig`` and builds the
network from its own code (:func:`unet_kwargs_from_architecture`). Anything else is refused.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from pixlearn.errors import ModelFileError
from pixlearn.nets.config import UNetConfig

ARCHITECTURE_FILE = "pixlearn_unet.py"
ARCHITECTURE_CALLABLE = "PixlearnUNet"
#: Output activation per task, applied inside the exported network.
ACTIVATIONS: dict[str, str] = {"semantic": "softmax", "instances": "sigmoid", "restore": "none"}

_WRAPPER = '''

class PixlearnUNet(nn.Module):
    """pixlearn's U-Net followed by the task's output activation (bioimage.io entry point).

    Parameters
    ----------
    activation : {"softmax", "sigmoid", "none"}
    **unet : UNetConfig fields (lists are accepted where the config has tuples).
    """

    def __init__(self, activation: str = "none", **unet: Any) -> None:
        super().__init__()
        if activation not in ("softmax", "sigmoid", "none"):
            raise ValueError(f"unknown activation {activation!r}")
        if "pool_kernels" in unet:
            unet["pool_kernels"] = tuple(tuple(int(k) for k in kernel) for kernel in unet["pool_kernels"])
        self.activation = activation
        self.net = UNet(UNetConfig(**unet))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        if self.activation == "softmax":
            return torch.softmax(y, dim=1)
        if self.activation == "sigmoid":
            return torch.sigmoid(y)
        return y
'''


def _module_text(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"cannot find the source of {name}")
    return Path(spec.origin).read_text(encoding="utf-8")


def _strip(text: str, drop: tuple[str, ...]) -> str:
    return "\n".join(line for line in text.splitlines() if line.strip() not in drop)


def architecture_source() -> str:
    """The self-contained Python source of the exported network (needs torch only).

    Returns
    -------
    source : str
        ``UNetConfig``, ``UNet`` and :data:`ARCHITECTURE_CALLABLE`.

    Examples
    --------
    >>> "class PixlearnUNet(nn.Module)" in architecture_source()
    True
    """
    future = "from __future__ import annotations"
    config = _strip(_module_text("pixlearn.nets.config"), (future, "from pixlearn.config import Config"))
    unet = _strip(_module_text("pixlearn.nets.unet"), (future, "from pixlearn.nets.config import UNetConfig"))
    header = (
        f'"""pixlearn U-Net for bioimage.io: made from pixlearn.nets.config and pixlearn.nets.unet."""\n\n'
        f"{future}\n\n"
        "from typing import Any\n\n\n"
        "class Config:  # stands in for pixlearn.config.Config (serialisation only)\n"
        "    pass\n\n"
    )
    return header + config + "\n\n" + unet + "\n" + _WRAPPER


def architecture_kwargs(unet: UNetConfig, task: str) -> dict[str, Any]:
    """Keyword arguments of :data:`ARCHITECTURE_CALLABLE` for a network (JSON-safe)."""
    kwargs: dict[str, Any] = {"activation": ACTIVATIONS[task]}
    kwargs.update(unet.to_dict())
    return kwargs


def unet_kwargs_from_architecture(callable_name: str, kwargs: dict[str, Any], path: Any) -> tuple[UNetConfig, str]:
    """The ``UNetConfig`` and activation of a package's architecture, or a one-line refusal.

    Parameters
    ----------
    callable_name : str
        The architecture's callable.
    kwargs : dict
        Its keyword arguments.
    path : path-like
        The package, named in errors.

    Returns
    -------
    unet : UNetConfig
    activation : str

    Raises
    ------
    ModelFileError
        Not pixlearn's architecture, or keyword arguments that are not a valid ``UNetConfig``.
    """
    if callable_name != ARCHITECTURE_CALLABLE:
        raise ModelFileError(
            f"the pytorch_state_dict architecture {callable_name!r} is arbitrary Python, which pixlearn does not run; "
            f"only pixlearn's {ARCHITECTURE_CALLABLE} (or onnx weights) can be loaded", path)
    kwargs = dict(kwargs)
    activation = kwargs.pop("activation", "none")
    if activation not in ACTIVATIONS.values():
        raise ModelFileError(f"unknown activation {activation!r} in the architecture's kwargs", path)
    try:
        unet = UNetConfig.from_dict(kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelFileError(f"the architecture's kwargs are not a pixlearn UNetConfig ({exc})", path) from None
    return unet, str(activation)
