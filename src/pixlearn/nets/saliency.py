"""Where an image classifier looks: Grad-CAM and occlusion saliency maps.

* :func:`grad_cam` (Selvaraju et al. 2017): the last stage's feature maps weighted by the mean
  gradient of the class logit, rectified and enlarged to the image. With the global-average-pooled
  head of :class:`~pixlearn.nets.classifier.ResidualClassifier` it equals the class activation map.
* :func:`occlusion` (Zeiler and Fergus 2014): how much the class probability drops when a patch
  of the image is replaced by the image's mean, averaged over the patches that cover each pixel.
  It needs only a predict function, so it explains any classifier.

Both take a normalised canonical image ``(..., C)`` and return a map of its spatial shape scaled
to 0..1 (all zeros when nothing supports the class).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def _unit(saliency: np.ndarray) -> np.ndarray:
    top = float(saliency.max(initial=0.0))
    return (saliency / top if top > 0 else np.zeros_like(saliency)).astype(np.float32)


def grad_cam(net: Any, image: np.ndarray, target: int | None = None, *, device: Any = None) -> np.ndarray:
    """Grad-CAM of `net`'s last stage for class `target` (default: the predicted class).

    Parameters
    ----------
    net : ResidualClassifier
        Anything with ``features(x)`` and ``head(features)`` methods.
    image : ndarray of shape (M, N, C) or (P, M, N, C), float32
        Normalised as the network's inputs.
    target : int, optional
    device : torch.device, optional
        Where `net` is; default its parameters' device.

    Returns
    -------
    saliency : ndarray of shape (M, N) or (P, M, N), float32 in 0..1
    """
    device = next(net.parameters()).device if device is None else device
    spatial = image.shape[:-1]
    x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, -1, 0), dtype=np.float32))[None].to(device)
    net.eval()
    with torch.enable_grad():
        features = net.features(x).detach().float().requires_grad_(True)
        logits = net.head(features)
        chosen = int(logits[0].argmax()) if target is None else int(target)
        (gradient,) = torch.autograd.grad(logits[0, chosen], features)
    weights = gradient[0].mean(dim=tuple(range(1, gradient.ndim - 1)), keepdim=True)
    cam = torch.relu((weights * features[0].detach()).sum(dim=0))
    mode = "bilinear" if len(spatial) == 2 else "trilinear"
    enlarged = F.interpolate(cam[None, None], size=tuple(spatial), mode=mode, align_corners=False)[0, 0]
    return _unit(enlarged.cpu().numpy())


def occlusion(predict_fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, target: int | None = None, *,
              patch_px: Sequence[int] | None = None, stride_px: Sequence[int] | None = None,
              batch_size: int = 64) -> np.ndarray:
    """Occlusion saliency: the drop of class `target`'s probability when patches are hidden.

    Parameters
    ----------
    predict_fn : callable
        ``predict_fn(batch (B, ..., C)) -> probabilities (B, K)``.
    image : ndarray of shape (M, N, C) or (P, M, N, C), float32
    target : int, optional
        Default: the class predicted for the whole image.
    patch_px, stride_px : sequence of int, optional
        Hidden patch and step per spatial axis; default a sixth of each side (at least 2 px) and
        a third of the patch.
    batch_size : int

    Returns
    -------
    saliency : ndarray of shape (M, N) or (P, M, N), float32 in 0..1

    Examples
    --------
    >>> image = np.zeros((12, 12, 1), np.float32); image[4:8, 4:8] = 1.0
    >>> def predict(batch):  # "probability" of class 1: the brightness of the centre
    ...     p = batch[:, 4:8, 4:8, 0].mean(axis=(1, 2))
    ...     return np.stack([1 - p, p], axis=1)
    >>> s = occlusion(predict, image, target=1)
    >>> bool(s[4:8, 4:8].mean() > s[0:2, 0:2].mean())
    True
    """
    spatial = image.shape[:-1]
    patch = tuple(patch_px) if patch_px is not None else tuple(max(2, s // 6) for s in spatial)
    stride = tuple(stride_px) if stride_px is not None else tuple(max(1, p // 3) for p in patch)
    base = predict_fn(image[None])[0]
    chosen = int(np.argmax(base)) if target is None else int(target)
    fill = image.reshape(-1, image.shape[-1]).mean(axis=0)
    starts = [sorted(set(list(range(0, max(1, s - p + 1), st)) + [max(0, s - p)]))
              for s, p, st in zip(spatial, patch, stride)]
    boxes: list[tuple[slice, ...]] = [tuple(slice(a, a + p) for a, p in zip(corner, patch))
                                      for corner in itertools.product(*starts)]
    total = np.zeros(spatial, np.float64)
    count = np.zeros(spatial, np.float64)
    for first in range(0, len(boxes), batch_size):
        chunk = boxes[first:first + batch_size]
        batch = np.repeat(image[None], len(chunk), axis=0)
        for i, box in enumerate(chunk):
            batch[i][box] = fill
        drops = base[chosen] - predict_fn(batch)[:, chosen]
        for box, drop in zip(chunk, drops):
            total[box] += drop
            count[box] += 1
    return _unit(np.clip(total / np.maximum(count, 1), 0, None))


__all__ = ["grad_cam", "occlusion"]
