"""A compact residual CNN for image classification, 2D or 3D, any channels, any input size.

:class:`ResidualClassifier` is built from a frozen :class:`~pixlearn.nets.classify_config.ClassifierNetConfig`:
a stem convolution, stages of residual blocks (pre-addition normalisation, ReLU after the sum, a 1x1
projection when the shape changes), global average pooling, dropout and a linear layer. It splits
into :meth:`~ResidualClassifier.features` (the last stage's feature map, what Grad-CAM explains)
and :meth:`~ResidualClassifier.head` (pooling and logits).
"""

from __future__ import annotations

import torch
from torch import nn

from pixlearn.nets.classify_config import ClassifierNetConfig


def _conv(ndim: int) -> type[nn.Module]:
    return nn.Conv2d if ndim == 2 else nn.Conv3d


def _norm(kind: str, ndim: int, channels: int) -> nn.Module:
    if kind == "group":
        groups = max(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    return nn.BatchNorm2d(channels) if ndim == 2 else nn.BatchNorm3d(channels)


class ResidualBlock(nn.Module):
    """``relu(norm(conv(relu(norm(conv(x))))) + shortcut(x))``; the first convolution may stride."""

    def __init__(self, cfg: ClassifierNetConfig, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        conv = _conv(cfg.ndim)
        # one Sequential, so that pixlearn.nets.inference.fuse_conv_bn folds both normalisations
        self.branch = nn.Sequential(
            conv(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            _norm(cfg.norm, cfg.ndim, out_channels),
            nn.ReLU(inplace=True),
            conv(out_channels, out_channels, 3, padding=1, bias=False),
            _norm(cfg.norm, cfg.ndim, out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(conv(in_channels, out_channels, 1, stride=stride, bias=False),
                                          _norm(cfg.norm, cfg.ndim, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.branch(x) + self.shortcut(x))


class ResidualClassifier(nn.Module):
    """Residual CNN mapping ``(B, C, *S)`` images to ``(B, n_classes)`` logits.

    Parameters
    ----------
    cfg : ClassifierNetConfig

    Examples
    --------
    >>> net = ResidualClassifier(ClassifierNetConfig(in_channels=3, n_classes=4, width=4, depth=2))
    >>> net(torch.zeros(2, 3, 20, 17)).shape
    torch.Size([2, 4])
    """

    def __init__(self, cfg: ClassifierNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        conv = _conv(cfg.ndim)
        widths = cfg.stage_widths
        self.stem = nn.Sequential(
            conv(cfg.in_channels, widths[0], 3, stride=cfg.stem_stride, padding=1, bias=False),
            _norm(cfg.norm, cfg.ndim, widths[0]),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        previous = widths[0]
        for stage, width in enumerate(widths):
            for index in range(cfg.blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(ResidualBlock(cfg, previous, width, stride))
                previous = width
        self.stages = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(previous, cfg.n_classes)
        self._initialise()

    def _initialise(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for module in self.modules():  # each block starts as (nearly) its shortcut: stable early training
            last_norm = module.branch[-1] if isinstance(module, ResidualBlock) else None
            if isinstance(last_norm, (nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm)):
                nn.init.zeros_(last_norm.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map ``(B, width, *S / reduction)``."""
        return self.stages(self.stem(x))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)`` of a feature map: global average pooling, dropout, linear."""
        pooled = features.mean(dim=tuple(range(2, features.ndim)))
        return self.fc(self.dropout(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def count_parameters(net: nn.Module) -> int:
    """Number of trainable weights of `net`."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad))


__all__ = ["ResidualBlock", "ResidualClassifier", "count_parameters"]
