"""Training losses keyed by name: pure functions ``loss(output, target) -> scalar tensor``.

``output`` is always the raw network output ``(B, K, *S)`` (logits or regression values). The
target layout depends on the loss:

==============  ==============================  =================================================
name            target                          loss
==============  ==============================  =================================================
``ce``          ``(B, *S)`` int64, -1 ignored   cross-entropy
``ce_dice``     ``(B, *S)`` int64, -1 ignored   cross-entropy + soft Dice over classes
``bce``         ``(B, K, *S)`` float 0..1       binary cross-entropy on logits
``bce_dice``    ``(B, K, *S)`` float 0..1       BCE + soft Dice
``l1``          ``(B, K, *S)`` float            mean absolute error
``mse``         ``(B, K, *S)`` float            mean squared error
``instance``    ``(B, 2, *S)`` float            channel 0: BCE + Dice of the foreground logit;
                                                channel 1: L1 of ``sigmoid(output)`` against the
                                                normalised boundary distance, on foreground only
==============  ==============================  =================================================

The ignore value is :data:`pixlearn.data.labels.IGNORE` (-1): unannotated pixels (scribbles) add
nothing to the loss or its gradient. Losses are computed in float32 even under autocast.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from pixlearn.data.labels import IGNORE

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_SMOOTH = 1.0


def _soft_dice(probabilities: torch.Tensor, onehot: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """1 - mean over channels of the batch soft Dice, ``(B, K, *S)`` inputs, optional ``(B, 1, *S)`` mask."""
    if mask is not None:
        probabilities = probabilities * mask
        onehot = onehot * mask
    dims = [0] + list(range(2, probabilities.ndim))
    intersection = (probabilities * onehot).sum(dims)
    denominator = probabilities.sum(dims) + onehot.sum(dims)
    dice = (2.0 * intersection + _SMOOTH) / (denominator + _SMOOTH)
    return 1.0 - dice.mean()


def cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits ``(B, K, *S)`` against class indices ``(B, *S)``, -1 ignored.

    The mean over annotated pixels; 0 (with a zero gradient) when none is annotated.
    """
    output = output.float()
    target = target.long()
    n_valid = (target != IGNORE).sum().clamp(min=1)
    return F.cross_entropy(output, target, ignore_index=IGNORE, reduction="sum") / n_valid


def cross_entropy_dice(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus soft Dice over all classes, ignoring pixels whose target is -1.

    The Dice term is the batch Dice per class, ``1 - mean_k (2 I_k + 1) / (P_k + T_k + 1)`` with
    ``I_k`` the summed probability of class ``k`` on pixels of class ``k``, ``P_k`` its summed
    probability on annotated pixels and ``T_k`` the number of pixels of class ``k``. It is
    computed without a one-hot tensor (gather + index_add), which keeps the loss cheap.

    Examples
    --------
    >>> logits = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])  # (1, 2, 1, 2)
    >>> round(float(cross_entropy_dice(logits, torch.tensor([[[0, -1]]]))), 3)
    0.0
    """
    output = output.float()
    target = target.long()
    n_classes = output.shape[1]
    valid = target != IGNORE
    n_valid = valid.sum().clamp(min=1)
    log_probabilities = F.log_softmax(output, dim=1)
    ce = F.nll_loss(log_probabilities, target, ignore_index=IGNORE, reduction="sum") / n_valid
    probabilities = log_probabilities.exp()
    safe = torch.where(valid, target, n_classes)  # ignored pixels count as an extra class
    dims = [0] + list(range(2, output.ndim))
    predicted = (probabilities * valid.unsqueeze(1).to(probabilities.dtype)).sum(dims)
    picked = probabilities.gather(1, safe.clamp(max=n_classes - 1).unsqueeze(1)).flatten()
    intersection = torch.zeros(n_classes + 1, dtype=probabilities.dtype, device=output.device)
    intersection = intersection.index_add(0, safe.flatten(), picked)[:n_classes]
    counts = torch.bincount(safe.flatten(), minlength=n_classes + 1)[:n_classes].to(probabilities.dtype)
    dice = (2.0 * intersection + _SMOOTH) / (predicted + counts + _SMOOTH)
    return ce + 1.0 - dice.mean()


def binary_cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE on logits; `target` has the shape of `output`, values in 0..1."""
    return F.binary_cross_entropy_with_logits(output.float(), target.float())


def binary_cross_entropy_dice(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE on logits plus soft Dice of ``sigmoid(output)`` per channel."""
    output = output.float()
    target = target.float()
    return binary_cross_entropy(output, target) + _soft_dice(torch.sigmoid(output), target)


def l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    return F.l1_loss(output.float(), target.float())


def mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    return F.mse_loss(output.float(), target.float())


def instance_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Loss of the 2-channel instance representation (see :mod:`pixlearn.postprocess.instances`).

    Parameters
    ----------
    output : Tensor of shape (B, 2, *S)
        Channel 0: foreground logit; channel 1: distance logit (``sigmoid`` gives the distance).
    target : Tensor of shape (B, 2, *S)
        Channel 0: foreground 0/1; channel 1: distance to the boundary normalised to 1 per object.

    Returns
    -------
    loss : scalar Tensor
        ``BCE + Dice`` of the foreground plus the L1 distance error averaged over foreground pixels.
    """
    output = output.float()
    target = target.float()
    foreground = target[:, :1]
    loss = binary_cross_entropy_dice(output[:, :1], foreground)
    distance_error = (torch.sigmoid(output[:, 1:2]) - target[:, 1:2]).abs() * foreground
    return loss + distance_error.sum() / foreground.sum().clamp(min=1.0)


LOSSES: dict[str, LossFn] = {
    "ce": cross_entropy,
    "ce_dice": cross_entropy_dice,
    "bce": binary_cross_entropy,
    "bce_dice": binary_cross_entropy_dice,
    "l1": l1,
    "mse": mse,
    "instance": instance_loss,
}


def make_loss(name: str) -> LossFn:
    """Return the loss function called `name` (a key of :data:`LOSSES`).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]
