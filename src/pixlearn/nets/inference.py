"""Eval-only copies of networks made faster for prediction.

Training keeps the module as it is (convolution, batch normalisation, ReLU; ``(B, C, *S)``
memory). Prediction can do with less:

* :func:`fuse_conv_bn` folds every eval-mode batch normalisation into the convolution before
  it (``w' = w * gamma / sqrt(var + eps)``, ``b' = (b - mean) * gamma / sqrt(var + eps) + beta``),
  which removes one pass over every feature map. Instance and group normalisation use statistics
  of the input, so they are never folded.
* :func:`inference_copy` adds channels-last memory (``torch.channels_last`` /
  ``channels_last_3d``): oneDNN's fastest convolution layout on CPUs, and the layout of
  pixlearn's canonical ``(B, ..., C)`` blocks, so a batch goes in and comes out without a copy.

Both return new modules; the original's parameters, buffers and ``state_dict`` are untouched.
The outputs equal the original's up to float rounding (about 1e-6 relative).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _foldable(conv: nn.Module, norm: nn.Module) -> bool:
    return bool(
        type(conv) in _CONVS
        and type(norm) in _BATCH_NORMS
        and norm.track_running_stats
        and norm.running_mean is not None
        and norm.num_features == conv.out_channels
    )


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """An eval-mode copy of `module` with each batch norm folded into the convolution before it.

    Only a convolution directly followed by a batch normalisation inside an ``nn.Sequential``
    is folded (the pattern of :class:`pixlearn.nets.unet.UNet`'s blocks); the normalisation is
    replaced by ``nn.Identity``. Instance and group normalisation are left as they are.

    Parameters
    ----------
    module : nn.Module

    Returns
    -------
    fused : nn.Module
        A deep copy in eval mode; use it for inference only (its batch norms are gone).

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()).eval()
    >>> [type(m).__name__ for m in fuse_conv_bn(net)]
    ['Conv2d', 'Identity', 'ReLU']
    """
    fused = copy.deepcopy(module).eval()
    for parent in fused.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        layers = list(parent)
        for i in range(len(layers) - 1):
            if _foldable(layers[i], layers[i + 1]):
                parent[i] = fuse_conv_bn_eval(layers[i], layers[i + 1])  # type: ignore[type-var, arg-type]
                parent[i + 1] = nn.Identity()
    return fused


def memory_format(ndim: int) -> torch.memory_format:
    """Channels-last memory format for `ndim` spatial axes (2 or 3)."""
    if ndim == 2:
        return torch.channels_last
    if ndim == 3:
        return torch.channels_last_3d
    raise ValueError(f"channels-last needs 2 or 3 spatial axes, got {ndim}")


def inference_copy(module: nn.Module, ndim: int, *, channels_last: bool = True) -> nn.Module:
    """An eval-only copy of `module` for fast prediction: batch norms folded, channels-last weights.

    Parameters
    ----------
    module : nn.Module
        A network taking ``(B, C, *S)`` with `ndim` spatial axes.
    ndim : {2, 3}
    channels_last : bool
        Weights in channels-last memory (else contiguous, for a path measured faster so;
        :mod:`pixlearn.nets.precision`).

    Returns
    -------
    fast : nn.Module
        On `module`'s device; its parameters do not require gradients.
    """
    layout = memory_format(ndim) if channels_last else torch.contiguous_format
    fast = fuse_conv_bn(module).to(memory_format=layout)  # type: ignore[call-overload]  # see train
    for p in fast.parameters():
        p.requires_grad_(False)
    return fast
