"""Configuration of the random augmentation of training patches, importable without torch.

:class:`AugmentConfig` (geometry, intensity, elastic deformation; used by
:func:`pixlearn.nets.patches.augment`) with its nested :class:`ColourAugmentConfig` (brightness,
contrast, gamma, blur, hue and saturation; used by :func:`pixlearn.nets.colour.jitter_colour`).
:mod:`pixlearn.nets.config` re-exports both, beside the other configuration of the room.
"""

from __future__ import annotations

import dataclasses

from pixlearn.config import Config


@dataclasses.dataclass(frozen=True)
class ColourAugmentConfig(Config):
    """Random colour and intensity changes of a normalised training patch (image only).

    Every change is scaled by `strength`: 0 (the default) is the identity and draws no random
    numbers, so a run without colour augmentation is the same as before this section existed;
    1 uses the ranges below. Factors are drawn log-uniformly, so a change and its inverse are
    equally likely.

    Parameters
    ----------
    strength : float
        Scale of all ranges below (0: off).
    brightness : float
        Largest additive shift of the intensities (normalised units, about 0..1).
    contrast : float
        Contrast about the patch mean (per channel) by a factor in ``[1/(1+c), 1+c]``.
    gamma : float
        Gamma exponent in ``[1/(1+g), 1+g]``, applied on the patch's min..max range.
    blur_probability : float
        Chance of a Gaussian blur of the spatial axes (channels kept apart).
    blur_sigma_px : float
        Largest blur sigma (drawn uniformly from 0), in pixels.
    hue : float
        Largest hue rotation of 3-channel images, in turns (0.1: 36 degrees); see
        :func:`pixlearn.nets.colour.rotate_hue`. Other channel counts are left alone.
    saturation : float
        Saturation (distance of each pixel from its channel mean) by a factor in
        ``[1/(1+s), 1+s]``, for images of two channels or more.
    """

    strength: float = 0.0
    brightness: float = 0.1
    contrast: float = 0.3
    gamma: float = 0.3
    blur_probability: float = 0.3
    blur_sigma_px: float = 1.5
    hue: float = 0.1
    saturation: float = 0.3

    def __post_init__(self) -> None:
        for name in ("strength", "brightness", "contrast", "gamma", "blur_sigma_px", "hue", "saturation"):
            if getattr(self, name) < 0:
                raise ValueError(f"ColourAugmentConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.blur_probability <= 1.0:
            raise ValueError(f"ColourAugmentConfig.blur_probability must be in [0, 1], got {self.blur_probability}")
        if self.hue > 0.5:
            raise ValueError(f"ColourAugmentConfig.hue is in turns and at most 0.5, got {self.hue}")

    @property
    def enabled(self) -> bool:
        """Whether any change is made (a positive `strength`)."""
        return self.strength > 0


COLOUR_ON = ColourAugmentConfig(strength=1.0)
"""Colour augmentation with the default ranges (what ``+colour`` of the recipe ablation trains)."""


@dataclasses.dataclass(frozen=True)
class AugmentConfig(Config):
    """Random augmentation of training patches (see :func:`pixlearn.nets.patches.augment`).

    Parameters
    ----------
    flips : bool
        Flip each spatial axis with probability 1/2.
    rotations : bool
        Rotate by a random multiple of 90 degrees in the row/column plane (square patches only;
        others get 0 or 180 degrees).
    intensity : bool
        Random intensity scale, shift and gamma, and Gaussian noise, on the image only. Turn off
        for restoration, where the target's intensities must follow the input's.
    scale_range, shift_range, gamma_range : tuple of float
        ``image * scale + shift``; gamma applied on the patch's min..max range.
    noise_std : float
        Largest standard deviation of additive noise (drawn uniformly in 0..noise_std).
    elastic : bool
        Smooth random elastic deformation (slower).
    elastic_alpha_px, elastic_sigma_px : float
        Displacement amplitude and smoothness of the deformation, in pixels.
    colour : ColourAugmentConfig
        Colour and intensity jitter, blur (off by default: ``strength=0``); applied after the
        geometric changes and before `intensity`. Files written before it existed read as off.
    """

    flips: bool = True
    rotations: bool = True
    intensity: bool = True
    scale_range: tuple[float, float] = (0.8, 1.25)
    shift_range: tuple[float, float] = (-0.1, 0.1)
    gamma_range: tuple[float, float] = (0.75, 1.33)
    noise_std: float = 0.03
    elastic: bool = False
    elastic_alpha_px: float = 8.0
    elastic_sigma_px: float = 6.0
    colour: ColourAugmentConfig = ColourAugmentConfig()

    def __post_init__(self) -> None:
        for name in ("scale_range", "shift_range", "gamma_range"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"AugmentConfig.{name}: low {low} > high {high}")
        if self.scale_range[0] <= 0 or self.gamma_range[0] <= 0:
            raise ValueError("AugmentConfig: scale and gamma ranges must be positive")
        if self.noise_std < 0 or self.elastic_alpha_px < 0 or self.elastic_sigma_px <= 0:
            raise ValueError("AugmentConfig: noise_std, elastic_alpha_px must be >= 0, elastic_sigma_px > 0")


NO_AUGMENT = AugmentConfig(flips=False, rotations=False, intensity=False, elastic=False)


__all__ = ["COLOUR_ON", "NO_AUGMENT", "AugmentConfig", "ColourAugmentConfig"]
