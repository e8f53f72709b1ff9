"""PyTorch networks and losses (imports torch)."""

from __future__ import annotations

from pixlearn.nets.losses import LOSSES, make_loss
from pixlearn.nets.unet import (
    UNet,
    UNetConfig,
    anisotropic_pool_kernels,
    receptive_field_halo,
    size_divisor,
)

__all__ = [
    "LOSSES",
    "UNet",
    "UNetConfig",
    "anisotropic_pool_kernels",
    "make_loss",
    "receptive_field_halo",
    "size_divisor",
]
