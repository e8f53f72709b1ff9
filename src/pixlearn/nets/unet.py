"""A 2D/3D U-Net built from a frozen :class:`UNetConfig` (:mod:`pixlearn.nets.config`), and its tiling geometry.

The network takes ``(B, C, *spatial)`` tensors of any spatial size: ``forward`` pads the high end
of each axis (edge replication) to a multiple of :func:`size_divisor` and crops the output back.
Two pure functions describe what a tiled predictor must respect to reproduce whole-image output:

* :func:`size_divisor` -- every block handed to the network must *start* at a multiple of this
  (per axis) in the whole image's coordinates, because pooling grids are anchored at the block
  start. (The block *length* is free: padding happens at the high end.)
* :func:`receptive_field_halo` -- a margin per axis, already a multiple of the divisor, such that
  predicting ``image[a - halo : b + halo]`` (clipped to the image) and cropping to ``[a, b)`` equals
  the whole-image prediction on ``[a, b)`` whenever ``a`` is a multiple of the divisor. This holds
  in eval mode with ``norm="batch"`` or ``"none"``; instance and group normalisation use statistics
  of the whole block, so tiles then only approximate the whole-image result.

What a tiler must respect: block starts (core start minus halo) at multiples of the divisor,
which holds when core starts are multiples of it since the halo is; blocks clipped at the image
border rather than padded by the tiler (the network pads the high end itself, by edge
replication, exactly as it does for the whole image).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pixlearn.nets.config import UNetConfig


def anisotropic_pool_kernels(depth: int, z_ratio: float) -> tuple[tuple[int, int, int], ...]:
    """Per-level 3D pooling kernels that leave Z unpooled until the voxels are about isotropic.

    Parameters
    ----------
    depth : int
        Number of pooling levels.
    z_ratio : float
        Z spacing divided by the in-plane spacing (e.g. 4.0 for 0.8 um planes at 0.2 um pixels).

    Returns
    -------
    kernels : tuple of (int, int, int)

    Examples
    --------
    >>> anisotropic_pool_kernels(3, 4.0)
    ((1, 2, 2), (1, 2, 2), (2, 2, 2))
    """
    kernels = []
    ratio = float(z_ratio)
    for _ in range(depth):
        if ratio >= 1.5:  # Z still clearly coarser than rows/columns: pool in-plane only
            kernels.append((1, 2, 2))
            ratio /= 2.0
        else:
            kernels.append((2, 2, 2))
    return tuple(kernels)


def size_divisor(cfg: UNetConfig) -> tuple[int, ...]:
    """Total down-sampling factor per spatial axis (stem times all pooling kernels).

    Blocks passed to the network must start at multiples of this, in whole-image coordinates,
    for tiled prediction to equal whole-image prediction.

    Examples
    --------
    >>> size_divisor(UNetConfig(ndim=2, depth=3))
    (8, 8)
    >>> size_divisor(UNetConfig(ndim=3, depth=2, pool_kernels=((1, 2, 2), (2, 2, 2)), stem_factor=2))
    (2, 8, 8)
    """
    factors = list(cfg.stem_factors)
    for kernel in cfg.level_pool_kernels:
        factors = [f * k for f, k in zip(factors, kernel)]
    return tuple(factors)


def receptive_field_halo(cfg: UNetConfig) -> tuple[int, ...]:
    """Margin per spatial axis that makes tiled prediction equal whole-image prediction.

    An upper bound on the receptive-field radius of an output pixel, rounded up to a multiple
    of :func:`size_divisor` so that a tile whose core starts at a multiple of the divisor also
    has its halo-extended block start at one.

    Parameters
    ----------
    cfg : UNetConfig

    Returns
    -------
    halo : tuple of int
        One value per spatial axis (planes, rows, columns), in input pixels.

    Examples
    --------
    >>> receptive_field_halo(UNetConfig(ndim=2, depth=2, base_channels=4))
    (28, 28)
    """
    radius = cfg.kernel_size // 2
    n = cfg.convs_per_block
    halos = []
    for axis, divisor in enumerate(size_divisor(cfg)):
        stem = cfg.stem_factors[axis]
        kernels = [k[axis] for k in cfg.level_pool_kernels]
        scale = stem
        halo = stem - 1  # space-to-depth groups `stem` pixels
        halo += n * radius * scale
        for k in kernels:  # encoder: pool (or strided convolution), then convolutions at the coarser scale
            if cfg.downsample == "maxpool":
                halo += (k - 1) * scale
                scale *= k
                halo += n * radius * scale
            else:
                halo += radius * scale + (k - 1) * scale
                scale *= k
                halo += (n - 1) * radius * scale
        for k in reversed(kernels):  # decoder: transposed convolution, then convolutions
            scale //= k
            halo += (k - 1) * scale
            halo += n * radius * scale
        halo += stem - 1  # depth-to-space
        halos.append(int(math.ceil(halo / divisor) * divisor))
    return tuple(halos)


def _conv(ndim: int) -> type[nn.Module]:
    return nn.Conv2d if ndim == 2 else nn.Conv3d


def _norm(kind: str, ndim: int, channels: int) -> nn.Module:
    if kind == "batch":
        return (nn.BatchNorm2d if ndim == 2 else nn.BatchNorm3d)(channels)
    if kind == "instance":
        return (nn.InstanceNorm2d if ndim == 2 else nn.InstanceNorm3d)(channels, affine=True)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


class _Block(nn.Module):
    """``n`` x (conv -> norm -> ReLU), optionally with a projected residual shortcut."""

    def __init__(self, cfg: UNetConfig, in_channels: int, out_channels: int,
                 stride: tuple[int, ...] | None = None) -> None:
        super().__init__()
        conv = _conv(cfg.ndim)
        bias = cfg.norm == "none"  # a bias before a normalisation is a redundant op
        layers: list[nn.Module] = []
        channels = in_channels
        first_stride = stride if stride is not None else 1
        for i in range(cfg.convs_per_block):
            layers.append(conv(channels, out_channels, cfg.kernel_size, padding=cfg.kernel_size // 2, bias=bias,
                               stride=first_stride if i == 0 else 1))
            layers.append(_norm(cfg.norm, cfg.ndim, out_channels))
            if not (cfg.residual and i == cfg.convs_per_block - 1):
                layers.append(nn.ReLU(inplace=True))
            channels = out_channels
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module | None = None
        if cfg.residual:
            self.shortcut = (
                nn.Identity() if in_channels == out_channels and stride is None
                else conv(in_channels, out_channels, 1, bias=False, stride=first_stride)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is None:
            return self.body(x)
        return F.relu(self.body(x) + self.shortcut(x), inplace=True)


class _NearestUp(nn.Module):
    """1x1 convolution at the coarse level, then nearest-neighbour enlargement by `factors`."""

    def __init__(self, conv: nn.Module, factors: tuple[int, ...]) -> None:
        super().__init__()
        self.conv = conv
        self.factors = tuple(int(f) for f in factors)
        # Both modes copy each pixel f times, like repeat_interleave, in one fused kernel, where
        # they are exact: "nearest" for powers of two (its source index is floor(i / f) in binary
        # arithmetic; the ONNX exporters know it, so outside engines can run the network), else
        # "nearest-exact" ("nearest" can round (f * j) / f below j for f = 3).
        powers_of_two = all(f & (f - 1) == 0 for f in self.factors)
        self.mode = "nearest" if powers_of_two else "nearest-exact"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), scale_factor=self.factors, mode=self.mode)


def _space_to_depth(x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """``(B, C, *S)`` -> ``(B, C * prod(f), *(S / f))`` (pixel unshuffle along every axis)."""
    if all(f == 1 for f in factors):
        return x
    if len(factors) == 2 and factors[0] == factors[1]:
        return F.pixel_unshuffle(x, factors[0])
    b, c, *size = x.shape
    shape = [b, c]
    for s, f in zip(size, factors):
        shape += [s // f, f]
    x = x.reshape(shape)
    nd = len(size)
    order = [0, 1] + [3 + 2 * i for i in range(nd)] + [2 + 2 * i for i in range(nd)]
    x = x.permute(order)
    return x.reshape(b, c * math.prod(factors), *[s // f for s, f in zip(size, factors)])


def _depth_to_space(x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`_space_to_depth`."""
    if all(f == 1 for f in factors):
        return x
    if len(factors) == 2 and factors[0] == factors[1]:
        return F.pixel_shuffle(x, factors[0])
    b, cf, *size = x.shape
    nd = len(size)
    c = cf // math.prod(factors)
    x = x.reshape([b, c, *factors, *size])
    order = [0, 1]
    for i in range(nd):
        order += [2 + nd + i, 2 + i]
    x = x.permute(order)
    return x.reshape(b, c, *[s * f for s, f in zip(size, factors)])


class UNet(nn.Module):
    """U-Net from a :class:`UNetConfig`: blocks of conv-norm-ReLU, max pooling, transposed
    convolutions for up-sampling, concatenated (or added) skips and a 1x1 head.

    Parameters
    ----------
    cfg : UNetConfig

    Examples
    --------
    >>> net = UNet(UNetConfig(ndim=2, depth=2, base_channels=4, out_channels=3)).eval()
    >>> net(torch.zeros(1, 1, 13, 7)).shape
    torch.Size([1, 3, 13, 7])
    """

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        channels = cfg.channels
        stem = math.prod(cfg.stem_factors)
        conv = _conv(cfg.ndim)
        transpose: Any = nn.ConvTranspose2d if cfg.ndim == 2 else nn.ConvTranspose3d  # kernel tuples of ndim
        pool = nn.MaxPool2d if cfg.ndim == 2 else nn.MaxPool3d
        kernels = cfg.level_pool_kernels
        self.encoders = nn.ModuleList()
        self.pools = nn.ModuleList()
        previous = cfg.in_channels * stem
        for level, width in enumerate(channels):
            stride = None
            if level > 0 and cfg.downsample == "maxpool":
                self.pools.append(pool(kernels[level - 1], kernels[level - 1]))
            elif level > 0:
                stride = kernels[level - 1]
            self.encoders.append(_Block(cfg, previous, width, stride))
            previous = width
        self.upsamples = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in range(cfg.depth - 1, -1, -1):
            k = kernels[level]
            if cfg.upsample == "transpose":
                self.upsamples.append(transpose(channels[level + 1], channels[level], k, k, bias=False))
            else:
                self.upsamples.append(_NearestUp(conv(channels[level + 1], channels[level], 1, bias=False), k))
            merged = 2 * channels[level] if cfg.skip_merge == "concat" else channels[level]
            self.decoders.append(_Block(cfg, merged, channels[level]))
        self.head = conv(channels[0], cfg.out_channels * stem, 1)
        self._divisor = size_divisor(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_channels, *S)`` to ``(B, out_channels, *S)`` for any spatial size ``S``."""
        size = x.shape[2:]
        if len(size) != self.cfg.ndim:
            raise ValueError(f"UNet expects {self.cfg.ndim} spatial axes, got input of shape {tuple(x.shape)}")
        extra = [(-s) % d for s, d in zip(size, self._divisor)]
        if any(extra):
            pad: list[int] = []
            for e in reversed(extra):  # F.pad lists the last axis first
                pad += [0, e]
            x = F.pad(x, pad, mode="replicate")
        x = _space_to_depth(x, self.cfg.stem_factors)
        skips = []
        for level, encoder in enumerate(self.encoders):
            if level > 0 and self.pools:
                x = self.pools[level - 1](x)
            x = encoder(x)
            skips.append(x)
        skips.pop()
        concat = self.cfg.skip_merge == "concat"
        for upsample, decoder in zip(self.upsamples, self.decoders):
            up, skip = upsample(x), skips.pop()
            x = decoder(torch.cat([up, skip], dim=1) if concat else up + skip)
        x = _depth_to_space(self.head(x), self.cfg.stem_factors)
        if any(extra):
            x = x[(slice(None), slice(None)) + tuple(slice(0, s) for s in size)]
        return x
