"""Synthetic fluorescence images of nuclei with exact instance labels.

The generator follows the image formation of a widefield or confocal fluorescence microscope:

1. *Objects* (:mod:`pixlearn.synthetic.geometry`). Nuclei are ellipses (2D) or ellipsoids (3D) of random size, elongation and
   orientation whose boundary is perturbed by a few random low-order harmonics, so outlines are
   irregular but smooth. A chosen fraction is placed against an earlier nucleus so that they
   touch. Where two shapes overlap, each pixel goes to the object it lies deepest in (relative
   to that object's radius in the pixel's direction), so the labels partition the pixels: every
   pixel belongs to at most one object, every object is one connected component (face
   connectivity), and the intensity image is painted *from* the final labels.
2. *Clean intensity.* Each nucleus has its own brightness, a smoothed-noise chromatin texture,
   a slight fall-off towards its rim, and a few nucleoli (darker spots by default, as with DAPI).
3. *Optics.* The clean intensity is blurred with a Gaussian point-spread function (wider along
   the optical axis in 3D), and a smooth, uneven background is added.
4. *Detection.* Poisson photon noise, a camera offset and Gaussian read noise, then rounding
   and clipping to ``uint16`` or ``uint8``.

Intensities are relative until step 4: the brightest nucleus has brightness 1 and
``SyntheticConfig.photons`` is the expected photon count at brightness 1.

3D volumes have anisotropic voxels: planes are ``z_spacing`` times further apart than rows and
columns, so nuclei span fewer planes than rows. All sizes in the configuration are in pixels of
the in-plane grid.

:func:`make_dataset` writes a data set in the layout of the shared data sets (``images/``,
``labels/``, ``split.json``). What a user would paint on such images (sparse scribbles) and
class masks made from the exact labels come from :mod:`pixlearn.synthetic.scribbles`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from pixlearn.config import Config
from pixlearn.data.atomic import atomic_path
from pixlearn.data.formats import IMAGE_SUFFIXES
from pixlearn.data.writers import write_image
from pixlearn.errors import PixlearnError
from pixlearn.synthetic.geometry import MAX_LABEL, paint_labels, place_nuclei

logger = logging.getLogger(__name__)

DTYPES: tuple[str, ...] = ("uint8", "uint16")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig(Config):
    """How synthetic nuclei images are made (see the module docstring for the model).

    Parameters
    ----------
    shape : tuple of int
        ``(M, N)`` for 2D or ``(P, M, N)`` for 3D; each side at least 8.
    n_objects : int, optional
        Number of nuclei to place. ``None``: derived from `coverage`. Nuclei that find no room,
        or are cut to slivers by the border, are dropped, so the final count can be lower.
    coverage : float
        Used when `n_objects` is ``None``: the intended fraction of the image inside nuclei,
        in ``[0, 0.8]``. Nuclei cut by the border and placements that find no room make the
        result lower, most in thin 3D stacks (about 0.24 for the default 3D ``(32, 128, 128)``).
    radius_px : (float, float)
        Range of the nuclei's largest semi-axis, in-plane pixels.
    eccentricity : float
        Largest eccentricity of the ellipse; each nucleus draws one in ``[0, eccentricity]``.
    irregularity : float
        Amplitude of the boundary perturbation relative to the radius, in ``[0, 0.3]``.
    texture : float
        Standard deviation of the chromatin texture relative to the nucleus' brightness.
    nucleoli : int
        Largest number of nucleoli per nucleus (each draws ``0..nucleoli``).
    nucleoli_contrast : float
        Relative intensity change at a nucleolus' centre, in ``[-1, 2]``: negative is darker
        (DAPI-like), positive brighter.
    brightness : (float, float)
        Range of the nuclei's relative brightness, ``0 <= low <= high``.
    touching_fraction : float
        Probability, in ``[0, 1]``, that a nucleus is placed against an earlier one.
    blur_sigma_px : float
        Standard deviation of the Gaussian point-spread function in the plane, pixels.
    axial_blur_ratio : float
        3D only: the PSF is this many times wider along the optical axis (in physical units)
        than in the plane.
    background : float
        Mean background level, relative to a brightness of 1.
    background_variation : float
        Amplitude of the smooth uneven-background field added to `background` (same units).
    background_scale_px : float
        Length scale of the background field, pixels.
    photons : float
        Expected detected photons at relative intensity 1 (sets the Poisson noise).
    read_noise : float
        Standard deviation of the Gaussian camera read noise, in counts.
    offset : float
        Camera offset added to every pixel, counts.
    dtype : {"uint16", "uint8"}
        Output image type; counts above its range saturate.
    z_spacing : float
        3D only: distance between planes in units of the in-plane pixel size.
    schema_version : int
    """

    shape: tuple[int, ...] = (256, 256)
    n_objects: int | None = None
    coverage: float = 0.3
    radius_px: tuple[float, float] = (7.0, 14.0)
    eccentricity: float = 0.7
    irregularity: float = 0.06
    texture: float = 0.2
    nucleoli: int = 3
    nucleoli_contrast: float = -0.35
    brightness: tuple[float, float] = (0.35, 1.0)
    touching_fraction: float = 0.3
    blur_sigma_px: float = 1.2
    axial_blur_ratio: float = 3.0
    background: float = 0.08
    background_variation: float = 0.06
    background_scale_px: float = 96.0
    photons: float = 200.0
    read_noise: float = 2.0
    offset: float = 10.0
    dtype: str = "uint16"
    z_spacing: float = 2.0
    schema_version: int = 1

    def __post_init__(self) -> None:
        # accept lists (JSON, YAML, callers) but store tuples so the config stays hashable
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "radius_px", tuple(float(r) for r in self.radius_px))
        object.__setattr__(self, "brightness", tuple(float(b) for b in self.brightness))
        if len(self.shape) not in (2, 3) or min(self.shape) < 8:
            raise ValueError(f"shape must have 2 or 3 sides of at least 8, got {self.shape}")
        if self.n_objects is not None and self.n_objects < 0:
            raise ValueError(f"n_objects must be >= 0 or None, got {self.n_objects}")
        if self.n_objects is not None and self.n_objects > MAX_LABEL:
            raise ValueError(f"n_objects must be <= {MAX_LABEL} (uint16 labels)")
        if not 0.0 <= self.coverage <= 0.8:
            raise ValueError(f"coverage must lie in [0, 0.8], got {self.coverage}")
        _check_range("radius_px", self.radius_px, low=0.0, strict=True)
        _check_range("brightness", self.brightness, low=0.0, strict=False)
        if not 0.0 <= self.eccentricity < 1.0:
            raise ValueError(f"eccentricity must lie in [0, 1), got {self.eccentricity}")
        if not 0.0 <= self.irregularity <= 0.3:
            raise ValueError(f"irregularity must lie in [0, 0.3], got {self.irregularity}")
        if not -1.0 <= self.nucleoli_contrast <= 2.0:
            raise ValueError(f"nucleoli_contrast must lie in [-1, 2], got {self.nucleoli_contrast}")
        if not 0.0 <= self.touching_fraction <= 1.0:
            raise ValueError(f"touching_fraction must lie in [0, 1], got {self.touching_fraction}")
        if self.nucleoli < 0:
            raise ValueError(f"nucleoli must be >= 0, got {self.nucleoli}")
        for name in ("texture", "blur_sigma_px", "background", "background_variation",
                     "read_noise", "offset"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        for name in ("axial_blur_ratio", "background_scale_px", "photons", "z_spacing"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")

    @property
    def ndim(self) -> int:
        """Number of spatial axes, 2 or 3."""
        return len(self.shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Pixel size per axis in in-plane pixel units: ``(1, 1)`` or ``(z_spacing, 1, 1)``."""
        return (self.z_spacing, 1.0, 1.0) if self.ndim == 3 else (1.0, 1.0)


def _check_range(name: str, pair: tuple[float, ...], *, low: float, strict: bool) -> None:
    if len(pair) != 2 or not all(math.isfinite(v) for v in pair):
        raise ValueError(f"{name} must be two finite numbers, got {pair}")
    bad_low = pair[0] <= low if strict else pair[0] < low
    if bad_low or pair[1] < pair[0]:
        op = ">" if strict else ">="
        raise ValueError(f"{name} needs {op} {low} and low <= high, got {pair}")



def _smooth_noise(
    shape: tuple[int, ...], spacing: np.ndarray, sigma_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    field = ndi.gaussian_filter(noise, sigma=[sigma_px / s for s in spacing], truncate=3.0)
    std = float(field.std())
    return field / std if std > 0 else field


def _low_frequency_field(
    shape: tuple[int, ...], spacing: np.ndarray, scale_px: float, rng: np.random.Generator
) -> np.ndarray:
    """A smooth random field in [-1, 1]: coarse random nodes interpolated with Gaussian weights."""
    matrices = []
    for n, s in zip(shape, spacing):
        length = n * s
        n_nodes = max(2, int(math.ceil(length / scale_px)) + 1)
        nodes = np.linspace(0.0, length, n_nodes)
        step = nodes[1] - nodes[0]
        pos = (np.arange(n) + 0.5) * s
        weights = np.exp(-0.5 * ((pos[:, None] - nodes[None, :]) / (0.7 * step)) ** 2)
        matrices.append(weights / weights.sum(axis=1, keepdims=True))
    field = rng.uniform(-1.0, 1.0, size=[m.shape[1] for m in matrices])
    for axis, m in enumerate(matrices):
        field = np.moveaxis(np.tensordot(m, np.moveaxis(field, axis, 0), axes=1), 0, axis)
    field = field - field.mean()
    peak = float(np.abs(field).max())
    return (field / peak if peak > 0 else field).astype(np.float32)


def _add_nucleoli(
    clean: np.ndarray, labels: np.ndarray, cfg: SyntheticConfig, rng: np.random.Generator
) -> None:
    """Multiply Gaussian spots into each object of `clean`, in place, inside its bounding box."""
    spacing = np.asarray(cfg.spacing, np.float32)
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        count = int(rng.integers(0, cfg.nucleoli + 1))
        if count == 0:
            continue
        mine = labels[box] == index
        coords = np.argwhere(mine)
        size = (np.count_nonzero(mine) * np.prod(spacing)) ** (1.0 / labels.ndim)
        grids = np.meshgrid(
            *[np.arange(sl.stop - sl.start, dtype=np.float32) * s for sl, s in zip(box, spacing)],
            indexing="ij", sparse=True,
        )
        factor = np.ones(mine.shape, np.float32)
        for _ in range(count):
            centre = coords[rng.integers(len(coords))] * spacing
            sigma = rng.uniform(0.06, 0.12) * size
            dist2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
            factor += np.float32(cfg.nucleoli_contrast) * np.exp(-0.5 * dist2 / sigma**2)
        np.clip(factor, 0.0, None, out=factor)
        clean[box][mine] *= factor[mine]


def make_nuclei(cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic fluorescence image of nuclei and its exact instance labels.

    Parameters
    ----------
    cfg : SyntheticConfig
        Shape (2D or 3D), object statistics, optics and noise.
    rng : numpy.random.Generator
        The only source of randomness: the same generator state gives the same image.

    Returns
    -------
    image : ndarray of shape (M, N) or (P, M, N), uint16 or uint8 (``cfg.dtype``)
        Noisy, blurred, quantised intensities.
    labels : ndarray of shape (M, N) or (P, M, N), uint16
        ``0`` background, ``1..N`` one nucleus each; every nucleus is one face-connected
        component and no pixel belongs to two nuclei.

    Examples
    --------
    >>> image, labels = make_nuclei(SyntheticConfig(shape=(64, 64)), np.random.default_rng(0))
    >>> image.shape, image.dtype.name, labels.dtype.name, int(labels.max()) > 0
    ((64, 64), 'uint16', 'uint16', True)
    """
    spacing = np.asarray(cfg.spacing)
    nuclei = place_nuclei(cfg, rng)
    labels, depth, brightness = paint_labels(nuclei, cfg)
    logger.debug("placed %d nuclei, %d kept", len(nuclei), len(brightness))

    texture = 0.65 * _smooth_noise(cfg.shape, spacing, 0.8, rng)
    texture += 0.35 * _smooth_noise(cfg.shape, spacing, 2.5, rng)
    level = np.zeros(len(brightness) + 1, np.float32)
    level[1:] = brightness
    clean = level[labels]
    clean *= 1.0 + np.float32(cfg.texture) * texture
    clean *= 0.8 + 0.2 * np.sqrt(depth)  # dimmer towards the rim
    np.clip(clean, 0.0, None, out=clean)
    if cfg.nucleoli and cfg.nucleoli_contrast:
        _add_nucleoli(clean, labels, cfg, rng)

    if cfg.blur_sigma_px > 0:
        sigma = [cfg.blur_sigma_px / s for s in spacing]
        if cfg.ndim == 3:
            sigma[0] *= cfg.axial_blur_ratio
        clean = ndi.gaussian_filter(clean, sigma=sigma, truncate=3.0)
    background = cfg.background + cfg.background_variation * _low_frequency_field(
        cfg.shape, spacing, cfg.background_scale_px, rng
    )
    expected = (clean + np.clip(background, 0.0, None)) * np.float32(cfg.photons)
    counts = rng.poisson(expected).astype(np.float32)
    counts += np.float32(cfg.offset)
    if cfg.read_noise > 0:
        counts += np.float32(cfg.read_noise) * rng.standard_normal(cfg.shape, dtype=np.float32)
    top = np.iinfo(cfg.dtype).max
    image = np.clip(np.rint(counts), 0, top).astype(cfg.dtype)
    return image, labels


# --------------------------------------------------------------------------------------------
# data sets


def make_dataset(
    out_dir: str | os.PathLike[str],
    n_train: int,
    n_test: int,
    cfg: SyntheticConfig | None = None,
    seed: int = 0,
    *,
    overwrite: bool = False,
) -> dict[str, list[tuple[Path, Path]]]:
    """Write a synthetic instance-segmentation data set in the shared data sets' layout.

    Writes ``images/NAME.tif`` (``cfg.dtype``), ``labels/NAME.tif`` (uint16 instances),
    ``split.json`` (``{"train": [...], "test": [...]}``) and ``synthetic.json`` (the seed and
    configuration that reproduce it). Image ``i`` is drawn from the ``i``-th child of
    ``numpy.random.SeedSequence(seed)``, so it does not depend on how many images are made.

    Parameters
    ----------
    out_dir : path-like
        Data set folder; created when missing.
    n_train, n_test : int
        Number of training and test images (``>= 0``, at least one in all).
    cfg : SyntheticConfig, optional
        Default ``SyntheticConfig()`` (2D, 256 x 256).
    seed : int
    overwrite : bool
        Replace existing ``images/`` and ``labels/`` folders; without it, a folder that
        already holds images raises.

    Returns
    -------
    pairs : dict
        ``{"train": [(image_path, label_path), ...], "test": [...]}``.

    Raises
    ------
    ValueError
        Negative or zero counts.
    PixlearnError
        When `out_dir` already holds images and `overwrite` is false, or cannot be written.
    """
    if n_train < 0 or n_test < 0 or n_train + n_test == 0:
        raise ValueError(f"need n_train, n_test >= 0 and at least one image, got {n_train}, {n_test}")
    cfg = SyntheticConfig() if cfg is None else cfg
    root = Path(out_dir)
    image_dir, label_dir = root / "images", root / "labels"
    for folder in (image_dir, label_dir):
        if folder.is_dir() and any(
            p.name.lower().endswith(IMAGE_SUFFIXES) for p in folder.iterdir()
        ):
            if not overwrite:
                raise PixlearnError("already holds images; pass overwrite=True to replace", folder)
            shutil.rmtree(folder)
    n_total = n_train + n_test
    width = max(3, len(str(n_total - 1)))
    names = [f"nuclei_{i:0{width}d}" for i in range(n_total)]
    axes = "ZYX" if cfg.ndim == 3 else "YX"
    children = np.random.SeedSequence(seed).spawn(n_total)
    pairs: list[tuple[Path, Path]] = []
    for name, child in zip(names, children):
        image, labels = make_nuclei(cfg, np.random.default_rng(child))
        pairs.append((
            write_image(image_dir / f"{name}.tif", image, axes=axes),
            write_image(label_dir / f"{name}.tif", labels, axes=axes),
        ))
        logger.debug("wrote %s: %d nuclei", name, int(labels.max()))
    split = {"train": names[:n_train], "test": names[n_train:]}
    with atomic_path(root / "split.json") as tmp:
        tmp.write_text(json.dumps(split, indent=1))
    with atomic_path(root / "synthetic.json") as tmp:
        tmp.write_text(json.dumps({"seed": seed, "config": cfg.to_dict()}, indent=1))
    logger.info("wrote %d synthetic images to %s", n_total, root)
    return {"train": pairs[:n_train], "test": pairs[n_train:]}
