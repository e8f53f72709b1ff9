"""Checks of a network read from a model file: its architecture bounded before anything is
allocated (:func:`validate_unet_config`), its weights compared with the architecture
(:func:`validate_state_shapes`, :func:`check_state`; shapes from the ``meta`` device).

Every problem raises :class:`~pixlearn.errors.ModelFileError` naming the file and the tensor.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from pixlearn.errors import ModelFileError
from pixlearn.models.validate import MAX_CHANNELS

__all__ = [
    "MAX_UNET_PARAMETERS",
    "UNET_LIMITS",
    "check_state",
    "expected_state_shapes",
    "meta_state_shapes",
    "validate_state_shapes",
    "validate_unet_config",
]

MAX_UNET_PARAMETERS = 1 << 28  # 1 GiB of float32 weights

#: Upper bounds of the architecture fields of a network model file (checked before building).
UNET_LIMITS: dict[str, int | float] = {
    "in_channels": MAX_CHANNELS,
    "out_channels": MAX_CHANNELS,
    "depth": 8,
    "base_channels": 1024,
    "max_channels": 4096,
    "convs_per_block": 8,
    "kernel_size": 9,
    "stem_factor": 8,
    "channel_growth": 8.0,
}


def validate_unet_config(unet: Any, path: str | os.PathLike[str] | None = None) -> None:
    """Bound a :class:`~pixlearn.nets.unet.UNetConfig` read from a file, before the network is built.

    Raises
    ------
    ModelFileError
        A field past :data:`UNET_LIMITS`, pooling factors above 8, or more than
        :data:`MAX_UNET_PARAMETERS` weights (counted on PyTorch's ``meta`` device, no memory).
    """
    for name, limit in UNET_LIMITS.items():
        value = getattr(unet, name)
        if value > limit:
            raise ModelFileError(f"network {name} = {value} exceeds the limit {limit}", path)
    if any(int(k) > 8 for kernel in unet.pool_kernels for k in kernel):
        raise ModelFileError("network pooling factors above 8", path)
    count = sum(int(np.prod(shape)) for shape in expected_state_shapes(unet).values())
    if count > MAX_UNET_PARAMETERS:
        raise ModelFileError(f"network has {count} weights, more than the limit {MAX_UNET_PARAMETERS}", path)


def meta_state_shapes(build: Any, config: Any) -> dict[str, tuple[int, ...]]:
    """Name and shape of every tensor of the state dict of ``build(config)`` (a torch module
    class), built on the meta device: nothing is allocated."""
    import torch

    with torch.device("meta"):
        net = build(config)
    return {name: tuple(t.shape) for name, t in net.state_dict().items()}


def expected_state_shapes(unet: Any) -> dict[str, tuple[int, ...]]:
    """Name and shape of every tensor of the state dict of ``UNet(unet)``, without allocating it."""
    from pixlearn.nets.unet import UNet

    return meta_state_shapes(UNet, unet)


def validate_state_shapes(unet: Any, state: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> None:
    """Check that the tensors of a weights file are exactly those of the architecture.

    Raises
    ------
    ModelFileError
        Missing or extra tensors, a different shape, or a non-numeric dtype.
    """
    check_state(expected_state_shapes(unet), state, path)


def check_state(expected: Mapping[str, tuple[int, ...]], state: Mapping[str, Any],
                path: str | os.PathLike[str] | None = None, *, finite: bool = False) -> None:
    """Check that `state` holds exactly the tensors `expected` names, with their shapes, in a
    floating-point dtype (batch counters excepted) and, with `finite`, no NaN or infinite value.

    Raises
    ------
    ModelFileError
        The first tensor that is missing, unexpected, of another shape or dtype, or not finite.
    """
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise ModelFileError(f"weights do not fit the architecture (missing {missing[:5]}, unexpected {extra[:5]})", path)
    for name, shape in expected.items():
        tensor = state[name]
        if tuple(tensor.shape) != shape:
            raise ModelFileError(f"weight {name} has shape {tuple(tensor.shape)}, the architecture needs {shape}", path)
        counter = "num_batches" in name
        if tensor.dtype.is_complex or (not tensor.dtype.is_floating_point and not counter):
            raise ModelFileError(f"weight {name} has dtype {tensor.dtype}", path)
        if finite and not counter and not bool(tensor.isfinite().all()):
            raise ModelFileError(f"weight {name} holds NaN or infinite values", path)
