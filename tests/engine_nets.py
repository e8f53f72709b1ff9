"""Tiny U-Nets and odd-sized blocks shared by the tests of the outside prediction engines."""

from __future__ import annotations

import numpy as np
import torch

from pixlearn.nets import UNet, UNetConfig


def tiny_cfg(ndim: int, out_channels: int = 2) -> UNetConfig:
    return UNetConfig(ndim=ndim, in_channels=1, out_channels=out_channels, depth=2, base_channels=4)


def tiny_net(cfg: UNetConfig, seed: int = 0) -> UNet:
    """`cfg`'s U-Net in eval mode, random weights and non-trivial batch-norm statistics."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = UNet(cfg)
        for module in net.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def odd_blocks(ndim: int, seed: int = 1) -> np.ndarray:
    shape = (2,) + (7,) * (ndim - 2) + (21, 18, 1)  # sizes that are no multiple of the divisor
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)
