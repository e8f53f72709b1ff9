"""Synthetic widefield fluorescence scenes and their noisy acquisitions: pairs for a denoiser.

A scene (:func:`make_scene`) mixes the structures of stained cells: smooth cytoplasm, nuclei with
chromatin texture, filaments (actin, microtubules), spots and short rods (vesicles,
mitochondria), each with a random share, blurred by a Gaussian point-spread function. An
acquisition of it (:func:`acquire`) counts photons: Poisson noise on the expected counts of the
scene plus a background, then Gaussian camera read noise. :func:`make_denoising_pairs` gives
``(noisy, clean)`` pairs whose photon levels span two decades, so that a network trained on them
does not learn one noise level. Everything is drawn from the generator given: the same state
gives the same pairs. Pure NumPy and SciPy.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import ndimage as ndi
from scipy.special import expit

from pixlearn.config import Config


@dataclasses.dataclass(frozen=True)
class FluorescenceConfig(Config):
    """How synthetic fluorescence scenes and their acquisitions are drawn (ranges are sampled per image).

    Parameters
    ----------
    shape : tuple of int
        ``(M, N)``, each side at least 16.
    psf_sigma_px : (float, float)
        Range of the standard deviation of the Gaussian point-spread function, pixels.
    photons : (float, float)
        Range of the expected photons at the brightest structures (log-uniform): the signal-to-noise.
    background : (float, float)
        Range of the background level relative to the brightest structures.
    read_noise : (float, float)
        Range of the standard deviation of the camera read noise, in photons.
    filaments : (int, int)
        Range of the number of filaments.
    spots : (int, int)
        Range of the number of spots and rods.
    nuclei : (int, int)
        Range of the number of nuclei.
    schema_version : int
    """

    shape: tuple[int, ...] = (256, 256)
    psf_sigma_px: tuple[float, float] = (0.7, 2.5)
    photons: tuple[float, float] = (2.0, 200.0)
    background: tuple[float, float] = (0.0, 0.15)
    read_noise: tuple[float, float] = (0.0, 2.0)
    filaments: tuple[int, int] = (0, 60)
    spots: tuple[int, int] = (0, 300)
    nuclei: tuple[int, int] = (0, 6)
    schema_version: int = 1

    def __post_init__(self) -> None:
        if len(self.shape) != 2 or min(self.shape) < 16:
            raise ValueError(f"FluorescenceConfig.shape must be 2D with sides >= 16, got {self.shape}")
        for name in ("psf_sigma_px", "photons", "background", "read_noise", "filaments", "spots", "nuclei"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"FluorescenceConfig.{name} must be a range 0 <= low <= high, got {(low, high)}")
        if self.photons[0] <= 0:
            raise ValueError(f"FluorescenceConfig.photons must be positive, got {self.photons}")


def _smooth_field(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """White noise smoothed at `sigma` pixels, scaled to unit standard deviation."""
    field = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return field / max(float(field.std()), 1e-12)


def _cytoplasm(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Smooth cell bodies: a thresholded large-scale field with soft edges, dim and uneven."""
    field = _smooth_field(shape, rng.uniform(12.0, 40.0), rng)
    cells = expit((field - rng.uniform(-0.5, 1.0)) * 4.0)
    return (cells * (0.7 + 0.3 * _smooth_field(shape, 3.0, rng).clip(-2, 2) / 2)).astype(np.float32)


def _nuclei(shape: tuple[int, ...], count: int, rng: np.random.Generator) -> np.ndarray:
    """Ellipses with a chromatin texture, brighter towards their centre."""
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    out = np.zeros(shape, np.float32)
    texture = 1.0 + 0.25 * _smooth_field(shape, 1.2, rng)
    for _ in range(count):
        centre = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        a, b = rng.uniform(6.0, 25.0), rng.uniform(5.0, 20.0)
        angle = rng.uniform(0, math.pi)
        dr, dc = rows - centre[0], cols - centre[1]
        u = (dr * math.cos(angle) + dc * math.sin(angle)) / a
        v = (-dr * math.sin(angle) + dc * math.cos(angle)) / b
        radius = np.sqrt(u * u + v * v)
        inside = np.clip(1.0 - radius, 0.0, None) ** 0.3
        np.maximum(out, rng.uniform(0.4, 1.0) * inside * texture, out=out)
    return out


def _filaments(shape: tuple[int, ...], count: int, rng: np.random.Generator) -> np.ndarray:
    """Random smooth curves one pixel wide (the PSF gives them their width), of varied brightness."""
    out = np.zeros(shape, np.float32)
    for _ in range(count):
        position = np.array([rng.uniform(0, shape[0]), rng.uniform(0, shape[1])])
        heading, bend = rng.uniform(0, 2 * math.pi), rng.uniform(0.0, 0.08)
        level = rng.uniform(0.2, 1.0)
        for _ in range(int(rng.uniform(20, 2 * max(shape)))):
            heading += rng.normal(0.0, bend)
            position += (math.sin(heading), math.cos(heading))
            r, c = int(position[0]), int(position[1])
            if not (0 <= r < shape[0] and 0 <= c < shape[1]):
                break
            out[r, c] = max(out[r, c], level)
    return out


def _spots(shape: tuple[int, ...], count: int, rng: np.random.Generator) -> np.ndarray:
    """Points and short rods of random brightness (sized later by the blur)."""
    out = np.zeros(shape, np.float32)
    for _ in range(count):
        r, c = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        length, angle, level = rng.integers(1, 8), rng.uniform(0, math.pi), rng.uniform(0.2, 1.0)
        for step in range(int(length)):
            rr, cc = int(r + step * math.sin(angle)), int(c + step * math.cos(angle))
            if 0 <= rr < shape[0] and 0 <= cc < shape[1]:
                out[rr, cc] = max(out[rr, cc], level)
    return ndi.grey_dilation(out, size=(2, 2)) if rng.random() < 0.5 else out


def make_scene(cfg: FluorescenceConfig, rng: np.random.Generator) -> np.ndarray:
    """One clean scene: the expected intensity, ``0`` (dark) to about ``1`` (the brightest structures).

    Parameters
    ----------
    cfg : FluorescenceConfig
    rng : numpy.random.Generator

    Returns
    -------
    scene : ndarray of shape ``cfg.shape``, float32

    Examples
    --------
    >>> scene = make_scene(FluorescenceConfig(shape=(64, 64)), np.random.default_rng(0))
    >>> scene.shape, scene.dtype.name, float(scene.min()) >= 0.0, 0.5 < float(scene.max()) <= 1.0
    ((64, 64), 'float32', True, True)
    """
    shape = tuple(int(s) for s in cfg.shape)
    weights = rng.dirichlet(np.ones(4))  # each scene its own mixture of structures
    parts = (
        _cytoplasm(shape, rng) * rng.uniform(0.1, 0.5),
        _nuclei(shape, int(rng.integers(cfg.nuclei[0], cfg.nuclei[1] + 1)), rng),
        _filaments(shape, int(rng.integers(cfg.filaments[0], cfg.filaments[1] + 1)), rng) * 4.0,
        _spots(shape, int(rng.integers(cfg.spots[0], cfg.spots[1] + 1)), rng) * 6.0,
    )
    scene = sum(w * p for w, p in zip(weights, parts))
    scene = ndi.gaussian_filter(np.asarray(scene, np.float32), rng.uniform(*cfg.psf_sigma_px))
    top = float(np.percentile(scene, 99.9))
    return np.clip(scene / top, 0.0, 1.0).astype(np.float32) if top > 0 else scene.astype(np.float32)


def acquire(scene: np.ndarray, cfg: FluorescenceConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A noisy acquisition of `scene` and its noise-free expectation, both in photons.

    Parameters
    ----------
    scene : ndarray
        Expected intensity, ``0..1`` (:func:`make_scene`).
    cfg : FluorescenceConfig
    rng : numpy.random.Generator

    Returns
    -------
    noisy : ndarray, float32
        Poisson counts of ``(scene + background) * photons`` plus Gaussian read noise.
    clean : ndarray, float32
        ``(scene + background) * photons``: what the counts average to.
    """
    photons = math.exp(rng.uniform(math.log(cfg.photons[0]), math.log(cfg.photons[1])))
    clean = ((scene + rng.uniform(*cfg.background)) * photons).astype(np.float32)
    noisy = rng.poisson(clean).astype(np.float32)
    noisy += np.float32(rng.uniform(*cfg.read_noise)) * rng.standard_normal(scene.shape).astype(np.float32)
    return noisy, clean


def make_denoising_pairs(n: int, cfg: FluorescenceConfig, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`n` pairs of noisy images and their clean targets, ``(M, N, 1)`` float32 each.

    Examples
    --------
    >>> noisy, clean = make_denoising_pairs(2, FluorescenceConfig(shape=(32, 32)), np.random.default_rng(1))
    >>> len(noisy), noisy[0].shape, clean[1].dtype.name
    (2, (32, 32, 1), 'float32')
    """
    noisy, clean = [], []
    for _ in range(int(n)):
        image, target = acquire(make_scene(cfg, rng), cfg, rng)
        noisy.append(image[..., None])
        clean.append(target[..., None])
    return noisy, clean


__all__ = ["FluorescenceConfig", "acquire", "make_denoising_pairs", "make_scene"]
