"""Restoration scores: how close a restored image is to its target.

:func:`psnr` (peak signal-to-noise ratio in dB), :func:`ssim` (mean structural similarity, 2D or
3D, through :func:`skimage.metrics.structural_similarity`) and :func:`nrmse` (normalised root
mean squared error) compare two images of the same shape as ``float64`` and return a Python
``float``; they reject different shapes, NaN/Inf values and, where a data range is needed and
not given, a constant target.
"""

from __future__ import annotations

import numpy as np


def _restore_pair(target: np.ndarray, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    target = np.asarray(target, dtype=np.float64)
    output = np.asarray(output, dtype=np.float64)
    if target.shape != output.shape:
        raise ValueError(f"target has shape {target.shape} but output has shape {output.shape}")
    if target.size == 0:
        raise ValueError("empty images")
    if not (np.isfinite(target).all() and np.isfinite(output).all()):
        raise ValueError("images hold NaN or Inf values")
    return target, output


def _data_range(target: np.ndarray, data_range: float | None) -> float:
    if data_range is None:
        data_range = float(target.max() - target.min())
        if data_range == 0:
            raise ValueError("target is constant: pass data_range explicitly")
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    return float(data_range)


def psnr(target: np.ndarray, output: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB.

    Parameters
    ----------
    target, output : ndarray, same shape
        Any number of axes (``(M, N)``, ``(P, M, N)``, with or without channels).
    data_range : float, optional
        Peak-to-peak range of the signal; default ``target.max() - target.min()``.

    Returns
    -------
    psnr : float
        ``inf`` when the images are identical.

    Raises
    ------
    ValueError
        Different shapes, NaN/Inf values, or a constant target without `data_range`.

    Examples
    --------
    >>> t = np.array([0.0, 1.0, 0.0, 1.0])
    >>> round(psnr(t, t + 0.1), 3)
    20.0
    """
    target, output = _restore_pair(target, output)
    rng = _data_range(target, data_range)
    mse = float(np.mean((target - output) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(rng**2 / mse))


def ssim(
    target: np.ndarray,
    output: np.ndarray,
    data_range: float | None = None,
    *,
    channel_axis: int | None = None,
) -> float:
    """Mean structural similarity index (Wang et al. 2004), 2D or 3D.

    Uses :func:`skimage.metrics.structural_similarity` with a 7-pixel window (shrunk to the
    smallest spatial size, kept odd, for thin stacks).

    Parameters
    ----------
    target, output : ndarray of shape (M, N) or (P, M, N), or with a channel axis
    data_range : float, optional
        Default ``target.max() - target.min()``.
    channel_axis : int, optional
        Axis of channels (``-1`` for the canonical layout); SSIM is averaged over channels.

    Returns
    -------
    ssim : float
        In [-1, 1]; 1 for identical images.

    Raises
    ------
    ValueError
        Different shapes, NaN/Inf values, a constant target without `data_range`, or a
        spatial size below 3.

    Examples
    --------
    >>> t = np.indices((16, 16)).sum(0) % 5 / 4.0
    >>> ssim(t, t)
    1.0
    """
    from skimage.metrics import structural_similarity

    target, output = _restore_pair(target, output)
    rng = _data_range(target, data_range)
    spatial = list(target.shape)
    if channel_axis is not None:
        del spatial[channel_axis % target.ndim]
    win = min(7, min(spatial))
    win -= 1 - win % 2
    if win < 3:
        raise ValueError(f"SSIM needs every spatial size >= 3, got shape {target.shape}")
    value = structural_similarity(
        target, output, data_range=rng, win_size=win, channel_axis=channel_axis
    )
    return float(value)


def nrmse(target: np.ndarray, output: np.ndarray, normalization: str = "euclidean") -> float:
    """Normalised root mean squared error.

    Parameters
    ----------
    target, output : ndarray, same shape
    normalization : {"euclidean", "min-max", "mean"}
        Divide the RMSE by ``sqrt(mean(target**2))`` (so the result is
        ``||target - output|| / ||target||``, scikit-image's default), by the target's range,
        or by its mean.

    Returns
    -------
    nrmse : float
        0 for identical images.

    Raises
    ------
    ValueError
        Different shapes, NaN/Inf values, an unknown normalisation, or a zero denominator.

    Examples
    --------
    >>> round(nrmse(np.array([3.0, 4.0]), np.array([3.0, 4.0]) * 1.1), 6)
    0.1
    """
    target, output = _restore_pair(target, output)
    rmse = float(np.sqrt(np.mean((target - output) ** 2)))
    if normalization == "euclidean":
        denom = float(np.sqrt(np.mean(target**2)))
    elif normalization == "min-max":
        denom = float(target.max() - target.min())
    elif normalization == "mean":
        denom = float(target.mean())
    else:
        raise ValueError(
            f"normalization {normalization!r} is not 'euclidean', 'min-max' or 'mean'"
        )
    if denom == 0:
        raise ValueError(f"NRMSE undefined: the target's {normalization} norm is 0")
    return rmse / denom


__all__ = ["nrmse", "psnr", "ssim"]


def scale_to_target(target: np.ndarray, output: np.ndarray, *, pmin: float = 0.1, pmax: float = 99.9) -> tuple[np.ndarray, np.ndarray]:
    """Put a restoration and its target on one intensity scale before scoring (as CARE does).

    The target is percentile-normalised (`pmin`..`pmax` to 0..1); the output is then mapped by
    the affine transform that best fits it to the normalised target (least squares). Images
    whose intensities were scaled independently (such as 8-bit exports stretched one by one)
    can then be compared with ``data_range=1``.

    Parameters
    ----------
    target, output : ndarray of the same shape

    Returns
    -------
    target, output : ndarray, float32

    Examples
    --------
    >>> t = np.linspace(0, 1, 100).reshape(10, 10)
    >>> _, o = scale_to_target(t, 3 * t + 7, pmin=0, pmax=100)
    >>> bool(np.allclose(o, t, atol=1e-5))
    True
    """
    target = np.asarray(target, np.float64)
    output = np.asarray(output, np.float64)
    if target.shape != output.shape:
        raise ValueError(f"target shape {target.shape} differs from output shape {output.shape}")
    low, high = np.percentile(target, [pmin, pmax])
    target = (target - low) / max(high - low, 1e-12)
    design = np.stack([output.ravel(), np.ones(output.size)], axis=1)
    (scale, offset), *_ = np.linalg.lstsq(design, target.ravel(), rcond=None)
    return target.astype(np.float32), (scale * output + offset).astype(np.float32)
