"""Colour and intensity augmentation of normalised training patches (NumPy and SciPy only).

:func:`jitter_colour` changes contrast, brightness, gamma, hue and saturation and blurs, with the
ranges of a :class:`~pixlearn.nets.augment_config.ColourAugmentConfig`. Images are normalised
floats, about 0..1 but not clipped (percentile normalisation leaves values outside), so colour is
changed by linear channel mixing rather than through HSV, which needs values in 0..1:

* hue: a rotation of each RGB pixel about the grey axis ``(1, 1, 1)`` (:func:`rotate_hue`); it
  keeps every pixel's channel mean (its grey value) and its distance from grey (its chroma), and
  turns the direction of that distance, which is what an HSV hue shift does to within the
  difference between the HSV hexagon and a circle;
* saturation: each pixel's distance from its channel mean scaled by one factor.

Both are exact identities at zero and need no clipping.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from pixlearn.nets.augment_config import ColourAugmentConfig


def rotate_hue(image: np.ndarray, turns: float) -> np.ndarray:
    """Rotate the colours of an RGB image about the grey axis by `turns` of a full turn.

    Parameters
    ----------
    image : ndarray of shape (..., 3), float
    turns : float
        Rotation angle as a fraction of 360 degrees (1/3 maps red to green, green to blue).

    Returns
    -------
    image : ndarray of shape (..., 3), float32
        Each pixel's channel mean and its distance from grey are those of the input.

    Raises
    ------
    ValueError
        An image without exactly three channels.

    Examples
    --------
    >>> rotate_hue(np.array([[1.0, 0.0, 0.0]]), 1 / 3).round(6).tolist()
    [[0.0, 1.0, 0.0]]
    """
    image = np.asarray(image, np.float32)
    if image.shape[-1] != 3:
        raise ValueError(f"hue rotation needs 3 channels, got shape {image.shape}")
    angle = 2.0 * math.pi * float(turns)
    cos, sin = math.cos(angle), math.sin(angle)
    axis = np.full(3, 1.0 / math.sqrt(3.0))
    cross = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    rotation = cos * np.eye(3) + sin * cross + (1.0 - cos) * np.outer(axis, axis)  # Rodrigues' formula
    return np.ascontiguousarray(image @ rotation.T.astype(np.float32), dtype=np.float32)


def _log_uniform_factor(rng: np.random.Generator, spread: float, strength: float) -> np.float32:
    """A factor in ``[1/(1+spread), 1+spread]`` at strength 1, log-uniform (1 at strength 0)."""
    bound = strength * math.log1p(spread)
    return np.float32(math.exp(rng.uniform(-bound, bound)))


def _contrast_brightness(image: np.ndarray, rng: np.random.Generator, cfg: ColourAugmentConfig) -> np.ndarray:
    """Contrast about each channel's patch mean, then a shift of all channels."""
    mean = image.mean(axis=tuple(range(image.ndim - 1)), keepdims=True)
    image = mean + (image - mean) * _log_uniform_factor(rng, cfg.contrast, cfg.strength)
    shift = cfg.strength * cfg.brightness
    return image + np.float32(rng.uniform(-shift, shift))


def _gamma(image: np.ndarray, rng: np.random.Generator, cfg: ColourAugmentConfig) -> np.ndarray:
    """A gamma curve on the patch's min..max range (all channels together)."""
    gamma = _log_uniform_factor(rng, cfg.gamma, cfg.strength)
    low, high = float(image.min()), float(image.max())
    if high <= low:
        return image
    return np.float32(low) + np.float32(high - low) * ((image - low) / np.float32(high - low)) ** gamma


def _hue_saturation(image: np.ndarray, rng: np.random.Generator, cfg: ColourAugmentConfig) -> np.ndarray:
    """Hue rotation (3 channels) and saturation scaling (2 channels or more); grey images unchanged."""
    if image.shape[-1] < 2:
        return image
    if image.shape[-1] == 3:
        bound = cfg.strength * cfg.hue
        image = rotate_hue(image, float(rng.uniform(-bound, bound)))
    grey = image.mean(axis=-1, keepdims=True)
    return grey + (image - grey) * _log_uniform_factor(rng, cfg.saturation, cfg.strength)


def _blur(image: np.ndarray, rng: np.random.Generator, cfg: ColourAugmentConfig) -> np.ndarray:
    """With probability `blur_probability`, a Gaussian blur of the spatial axes."""
    if rng.random() >= cfg.blur_probability:
        return image
    sigma = float(rng.uniform(0.0, cfg.strength * cfg.blur_sigma_px))
    if sigma <= 0.0:
        return image
    return ndimage.gaussian_filter(image, sigma=(sigma,) * (image.ndim - 1) + (0.0,), mode="reflect")


def jitter_colour(image: np.ndarray, rng: np.random.Generator, cfg: ColourAugmentConfig) -> np.ndarray:
    """Randomly change the contrast, brightness, gamma, hue and saturation of a patch, and blur it.

    In that order: contrast about the mean and a brightness shift, a gamma curve, hue rotation
    (3 channels, :func:`rotate_hue`) and saturation (2 channels or more), then a Gaussian blur.
    Grey images get the intensity changes and the blur only.

    Parameters
    ----------
    image : ndarray of shape (M, N, C) or (P, M, N, C), float
        A normalised patch (about 0..1; values outside are allowed and not clipped).
    rng : numpy.random.Generator
        Not used at all at ``cfg.strength == 0``.
    cfg : ColourAugmentConfig

    Returns
    -------
    image : ndarray, float32
        A new contiguous array of the same shape (the input is not modified); equal to the input
        at ``cfg.strength == 0``.

    Examples
    --------
    >>> patch = np.full((4, 4, 3), 0.5, np.float32)
    >>> out = jitter_colour(patch, np.random.default_rng(0), ColourAugmentConfig(strength=1.0))
    >>> out.shape, out.dtype
    ((4, 4, 3), dtype('float32'))
    >>> bool(np.array_equal(jitter_colour(patch, np.random.default_rng(0), ColourAugmentConfig()), patch))
    True
    """
    image = np.array(image, dtype=np.float32)  # a copy: never hand back the input
    if not cfg.enabled:
        return image
    image = _contrast_brightness(image, rng, cfg)
    image = _gamma(image, rng, cfg)
    image = _hue_saturation(image, rng, cfg)
    image = _blur(image, rng, cfg)
    return np.ascontiguousarray(image, dtype=np.float32)


__all__ = ["jitter_colour", "rotate_hue"]
