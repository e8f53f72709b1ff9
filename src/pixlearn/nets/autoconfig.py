"""Self-configuration: choose a network and its training set-up from the data.

:func:`auto_config` derives, nnU-Net-style, a :class:`pixlearn.nets.unet.UNetConfig` and a
:class:`pixlearn.nets.training.TrainConfig` from the training images and their annotations: 2D or 3D
and the pooling anisotropy from the axes and pixel spacing, the patch shape from the median
object diameter and image size, the depth from the patch shape, the architecture and width
from the device (the classic U-Net on CUDA, the lean :data:`LEAN_CPU` variant on a CPU) and the
batch size from a memory budget. It only reads its inputs and returns frozen configurations;
nothing is trained here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pixlearn.nets.config import AugmentConfig, TrainConfig, UNetConfig
from pixlearn.nets.precision import resolve_device
from pixlearn.nets.unet import anisotropic_pool_kernels, size_divisor

logger = logging.getLogger(__name__)

LEAN_CPU: dict[str, Any] = {"convs_per_block": 1, "downsample": "conv", "upsample": "nearest", "skip_merge": "add"}
"""Architecture choices :func:`auto_config` makes on a CPU (see ``benchmarks/train_throughput.py``)."""

BF16_INSTANCES_CPU: dict[str, Any] = {"convs_per_block": 2, "stem_factor": 1}
"""What :func:`auto_config` changes of :data:`LEAN_CPU` for 2D instances on a CPU whose training runs
in bf16 (a measured fast path): two convolutions per level at full resolution. Measured on DSB2018
(``benchmarks/networks.py``, 30 minutes from scratch, 2 threads, AVX-512 BF16): pooled AP@0.5 0.758
and 0.752 (seeds 0 and 1) for the lean network at half resolution, 0.776 and 0.776 for this one; in
fp32 the same network gets a fifth of the epochs and scores below the lean one (0.708 against 0.739),
and so it does under a short budget (5 minutes, one thread each, side by side: 0.681 against 0.700):
it is chosen only without a time limit or with one of at least :data:`RICH_MIN_MINUTES`."""

RICH_MIN_MINUTES = 30.0
"""The shortest ``--time-limit`` for which :func:`auto_config` takes :data:`BF16_INSTANCES_CPU`."""


def _object_diameter(labels: Sequence[np.ndarray], task: str) -> float | None:
    """Median equivalent diameter (pixels) of the labelled objects, or ``None``."""
    from scipy import ndimage

    diameters = []
    for lab in labels:
        lab = np.asarray(lab)
        if task == "instances":
            ids = lab
        else:
            ids, _ = ndimage.label(lab > 0)
        counts = np.bincount(ids.ravel().astype(np.int64))[1:]
        counts = counts[counts > 0]
        if counts.size:
            power = 1.0 / lab.ndim
            diameters.append(2.0 * (counts * (3 / (4 * np.pi) if lab.ndim == 3 else 1 / np.pi)) ** power)
    if not diameters:
        return None
    return float(np.median(np.concatenate(diameters)))


#: Objects this many pixels across (median diameter) let a CPU network work at half resolution
#: (a space-to-depth stem), unless a class of dense semantic labels is thinner than this.
MIN_STEM_SIZE_PX = 16.0
#: On a CPU a batch holds at most this many pixels at the working resolution (patch pixels over the
#: stem's): a step costs about its pixels, so bigger batches only mean fewer updates in a time limit.
CPU_BATCH_PIXELS = 2**18


def class_widths(labels: Sequence[np.ndarray], *, max_pixels: int = 2**22) -> dict[int, float]:
    """How wide the regions of each class are, in pixels of the plane: four times the mean distance
    from the class's pixels to the edge of their region (the nearest pixel of another class, less
    half a pixel).

    Four times the mean distance is the width of a band (a membrane, say), and two thirds of the
    diameter of a disc. Class 0 (background) is not measured; unannotated pixels (-1) count
    as another class. Stacks ``(P, M, N)`` are measured plane by plane (in-plane widths), and at
    most about `max_pixels` pixels are measured, in evenly spaced planes and images.

    Parameters
    ----------
    labels : sequence of ndarray of shape (M, N) or (P, M, N), integer
        Class indices.
    max_pixels : int
        Pixels to measure at most (a stride over the planes of all images keeps below it).

    Returns
    -------
    widths : dict of int to float
        Width per class ``k >= 1`` found in a plane that also holds another class.

    Examples
    --------
    >>> labels = np.zeros((32, 32), int); labels[:, 10:14] = 1; labels[4:20, 20:30] = 2
    >>> {k: round(w, 1) for k, w in class_widths([labels]).items()}
    {1: 4.0, 2: 8.0}
    """
    from scipy import ndimage

    planes = [p for lab in labels for p in (np.asarray(lab) if np.ndim(lab) == 3 else [np.asarray(lab)])]
    stride = max(1, int(np.ceil(sum(p.size for p in planes) / max_pixels)))
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for plane in planes[::stride]:
        for k in np.unique(plane):
            mask = plane == k
            if k < 1 or mask.all():
                continue
            distance = ndimage.distance_transform_edt(mask)
            sums[int(k)] = sums.get(int(k), 0.0) + float(distance[mask].sum()) - 0.5 * int(np.count_nonzero(mask))
            counts[int(k)] = counts.get(int(k), 0) + int(np.count_nonzero(mask))
    return {k: 4.0 * sums[k] / counts[k] for k in sorted(sums)}


def _thinnest_width(labels: Sequence[np.ndarray] | None, task: str) -> float | None:
    """The width of the thinnest class of dense semantic labels; ``None`` for other tasks and for
    sparse annotations (whose strokes say nothing about the structures' widths)."""
    if task != "semantic" or not labels:
        return None
    annotated = sum(int(np.count_nonzero(np.asarray(lab) >= 0)) for lab in labels) / sum(np.size(lab) for lab in labels)
    widths = class_widths(labels) if annotated >= 0.5 else {}
    return min(widths.values()) if widths else None


#: A 3D network needs at least this many planes (median over the stacks) to pool along them;
#: thinner stacks (serial sections, a few confocal planes) train a 2D network on their planes.
MIN_PLANES_3D = 16
#: Planes this many times farther apart than the pixels are (``spacing``) also train in 2D.
MAX_ANISOTROPY_3D = 4.0


def choose_layout(shapes: Sequence[Sequence[int]], spacing: Sequence[float] | None = None) -> int:
    """Whether stacks train a 3D network or a 2D one on their planes: 2 or 3.

    The rule: 3D images (canonical ``(P, M, N, C)``) train in 3D unless the median stack has
    fewer than :data:`MIN_PLANES_3D` planes or the planes lie at least :data:`MAX_ANISOTROPY_3D`
    times farther apart than the pixels (`spacing`, ``(z, y, x)``); then in 2D, plane by plane,
    and prediction runs the 2D network plane by plane (:mod:`pixlearn.predict.planewise`).

    Examples
    --------
    >>> choose_layout([(15, 1024, 1024, 1)]), choose_layout([(64, 256, 256, 1)])
    (2, 3)
    >>> choose_layout([(64, 256, 256, 1)], spacing=(50.0, 4.6, 4.6)), choose_layout([(256, 256, 1)])
    (2, 2)
    """
    if not shapes or len(shapes[0]) != 4:
        return 2
    planes = float(np.median([s[0] for s in shapes]))
    anisotropy = float(spacing[0] / np.mean(spacing[1:])) if spacing is not None else 1.0
    return 2 if planes < MIN_PLANES_3D or anisotropy >= MAX_ANISOTROPY_3D else 3


def _round_down(value: float, divisor: int) -> int:
    return max(divisor, int(value) // divisor * divisor)


def auto_config(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray] | None,
    task: str,
    axes: str,
    *,
    out_channels: int,
    spacing: Sequence[float] | None = None,
    memory_mib: float | None = None,
    device: Any = None,
    bf16: bool = False,
    time_limit_s: float | None = None,
) -> tuple[UNetConfig, TrainConfig]:
    """Choose a network and training set-up from the data (nnU-Net-style defaults).

    * 2D or 3D from `axes` (a ``Z`` axis makes a 3D network, anisotropic pooling from `spacing`).
    * Patch size: about 8 median object diameters (at least 64, at most 256 pixels in-plane on
      CPU and 512 on CUDA), never larger than the median image.
    * Depth: as many poolings as keep the coarsest level at least 8 pixels (at most 5).
    * Architecture by device. CUDA: the classic U-Net (two convolutions per level,
      concatenated skips, transposed-convolution up-sampling, 32 base channels). CPU: a lean
      variant with 16 base channels, one convolution per level and path, strided-convolution
      down-sampling, 1x1 + nearest up-sampling and added skips (about 1.5x MONAI's default
      ``UNet`` training throughput at equal channels, see ``benchmarks/train_throughput.py``);
      with objects at least :data:`MIN_STEM_SIZE_PX` pixels across, a space-to-depth stem also
      halves the working resolution (``stem_factor=2``, about 4x cheaper per patch), unless a
      class of dense semantic labels is thinner than that (:func:`class_widths`: membranes of
      EM, say, which half the resolution would blur). For 2D instances on a CPU that trains in
      bf16 (`bf16`) without a time limit or with one of :data:`RICH_MIN_MINUTES` or more,
      :data:`BF16_INSTANCES_CPU` instead: full resolution, two convolutions per level.
    * Batch size from a memory budget (`memory_mib`, default a quarter of the free GPU memory or
      2 GiB on CPU), between 2 and 16, and on a CPU at most :data:`CPU_BATCH_PIXELS` pixels of
      the working resolution (see :func:`choose_batch_size`).

    Parameters
    ----------
    images : sequence of ndarray of shape (M, N, C) or (P, M, N, C)
        Canonical training images.
    labels : sequence of ndarray or None
        Their annotations (class indices or instance labels); ``None`` for restoration.
    task : {"semantic", "instances", "restore"}
    axes : str
        Axes of the images, e.g. ``"YXC"`` or ``"ZYXC"``.
    out_channels : int
        Raw network outputs (classes, 2 for instances, target channels for restoration).
    spacing : sequence of float, optional
        Pixel size per spatial axis (for 3D anisotropy).
    memory_mib : float, optional
    device : str or torch.device, optional
    bf16 : bool
        The training will run in bf16 on this CPU (the measured choice of
        :func:`pixlearn.nets.precision.resolve_precision`): a costlier network pays there.
    time_limit_s : float, optional
        The training's time limit (``TrainConfig.time_limit_s``), if any.

    Returns
    -------
    unet : UNetConfig
    train : TrainConfig
    """
    device = resolve_device(device)
    ndim = 3 if "Z" in axes.upper() else 2
    median_shape = np.median(np.array([im.shape[:-1] for im in images]), axis=0)
    diameter = _object_diameter(labels, task) if labels is not None and task != "restore" else None
    cpu = device.type != "cuda"
    thinnest = _thinnest_width(labels, task)
    stem = 2 if cpu and ndim == 2 and diameter is not None and diameter >= MIN_STEM_SIZE_PX else 1
    stem = 1 if thinnest is not None and thinnest < MIN_STEM_SIZE_PX else stem
    long_enough = time_limit_s is None or time_limit_s >= RICH_MIN_MINUTES * 60.0
    capacity = BF16_INSTANCES_CPU if cpu and bf16 and long_enough and ndim == 2 and task == "instances" else {}
    stem = int(capacity.get("stem_factor", stem))
    wanted, z_ratio = _wanted_patch(ndim, diameter, spacing, cpu)
    depth = _choose_depth(wanted, median_shape, z_ratio, stem)
    unet = _choose_network(ndim, int(images[0].shape[-1]), out_channels, depth, z_ratio, stem, cpu)
    unet = unet.replace(**capacity) if capacity else unet
    divisor = size_divisor(unet)
    patch = tuple(_round_down(min(w, m), d) for w, m, d in zip(wanted, median_shape, divisor))
    batch = choose_batch_size(unet, patch, memory_mib=memory_mib, device=device)
    loss = {"semantic": "ce_dice", "instances": "instance", "restore": "l1"}[task]
    augmentation = AugmentConfig(intensity=task != "restore")
    train_cfg = TrainConfig(patch_shape=patch, batch_size=batch, loss=loss, augmentation=augmentation,
                            precision="auto", channels_last="auto")
    logger.info("auto configuration: %dD, depth %d, stem %d, patch %s, batch %d (median object diameter %s px, "
                "thinnest class %s px wide)", ndim, depth, stem, patch, batch,
                None if diameter is None else round(diameter, 1), None if thinnest is None else round(thinnest, 1))
    return unet, train_cfg


def _wanted_patch(
    ndim: int, diameter: float | None, spacing: Sequence[float] | None, cpu: bool
) -> tuple[list[float], float]:
    """Patch size to aim for (before fitting the images) and the Z/XY spacing ratio."""
    target = float(np.clip(8 * (diameter or 32), 64, 256 if cpu else 512))
    if ndim == 2:
        return [target, target], 1.0
    z_ratio = float(spacing[0] / np.mean(spacing[1:])) if spacing is not None else 1.0
    plane = min(target, 128 if cpu else 192)
    return [max(8.0, plane / max(z_ratio, 1.0) / 2), plane, plane], z_ratio


def _choose_depth(wanted: Sequence[float], median_shape: np.ndarray, z_ratio: float, stem: int) -> int:
    """The most poolings (at most 5) that keep the coarsest level of the patch at least 8 pixels."""
    ndim = len(wanted)
    depth = 5
    while depth > 1:
        kernels = anisotropic_pool_kernels(depth, z_ratio) if ndim == 3 else ()
        divisor = size_divisor(UNetConfig(ndim=ndim, depth=depth, pool_kernels=kernels, stem_factor=stem))
        if min(min(w, m) / d for w, m, d in zip(wanted, median_shape, divisor)) >= 8:
            break
        depth -= 1
    return depth


def _choose_network(
    ndim: int, in_channels: int, out_channels: int, depth: int, z_ratio: float, stem: int, cpu: bool
) -> UNetConfig:
    """The classic U-Net on CUDA, the lean :data:`LEAN_CPU` variant (half the width) on a CPU."""
    kernels = anisotropic_pool_kernels(depth, z_ratio) if ndim == 3 else ()
    return UNetConfig(ndim=ndim, in_channels=in_channels, out_channels=out_channels, depth=depth,
                      base_channels=16 if cpu else 32, pool_kernels=kernels, stem_factor=stem,
                      max_channels=256 if cpu else 320, **(LEAN_CPU if cpu else {}))


def choose_batch_size(
    unet: UNetConfig, patch_shape: Sequence[int], *, memory_mib: float | None = None, device: Any = None
) -> int:
    """Patches per batch that fit a memory budget, between 2 and 16.

    On a CPU also at most :data:`CPU_BATCH_PIXELS` pixels at the network's working resolution
    (the patch's pixels over the stem's), so that a time-limited run makes as many updates with
    a large patch as with a small one at a stem of 2.

    Parameters
    ----------
    unet : UNetConfig
    patch_shape : sequence of int
        Spatial patch shape.
    memory_mib : float, optional
        Budget; default a quarter of the free GPU memory on CUDA, else 2 GiB.
    device : str or torch.device, optional

    Returns
    -------
    batch_size : int

    Examples
    --------
    >>> choose_batch_size(UNetConfig(depth=2, base_channels=4), (64, 64), device="cpu")
    16
    """
    device = resolve_device(device)
    budget = memory_mib
    if budget is None:
        budget = 2048.0
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            budget = free / 4 / 2**20
    # activations kept for backward: ~6 tensors of each level's width per conv, float32
    per_patch = 0.0
    pixels = float(np.prod(patch_shape)) / float(np.prod(unet.stem_factors))
    for level, width in enumerate(unet.channels):
        per_patch += 2 * unet.convs_per_block * 4 * width * pixels * 4
        if level < unet.depth:
            pixels /= float(np.prod(unet.level_pool_kernels[level]))
    batch = budget * 2**20 / max(per_patch, 1.0)
    if device.type != "cuda":  # a step costs about its pixels: more of them only means fewer updates
        batch = min(batch, CPU_BATCH_PIXELS * float(np.prod(unet.stem_factors)) / float(np.prod(patch_shape)))
    return int(np.clip(batch, 2, 16))


__all__ = ["BF16_INSTANCES_CPU", "CPU_BATCH_PIXELS", "LEAN_CPU", "MAX_ANISOTROPY_3D", "MIN_PLANES_3D", "MIN_STEM_SIZE_PX",
           "RICH_MIN_MINUTES", "auto_config", "choose_batch_size", "choose_layout", "class_widths"]
