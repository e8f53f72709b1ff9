"""Geometry of synthetic nuclei: random shapes, their placement, and the label image they make.

Nuclei are ellipses (2D) or ellipsoids (3D) of random size, elongation and orientation whose
boundary is perturbed by a few random low-order harmonics. :func:`place_nuclei` draws them
(a chosen fraction placed against an earlier nucleus so that they touch) and
:func:`paint_labels` turns them into a label image in which each pixel goes to the object it
lies deepest in. Used by :mod:`pixlearn.synthetic.nuclei`, which paints the intensities.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage as ndi

if TYPE_CHECKING:
    from pixlearn.synthetic.nuclei import SyntheticConfig

MAX_LABEL = int(np.iinfo(np.uint16).max)
"""Most objects a label image can hold (uint16 labels)."""


@dataclasses.dataclass(frozen=True)
class _Nucleus:
    """One nucleus in physical coordinates (in-plane pixel units)."""

    centre: np.ndarray  # (D,)
    semi_axes: np.ndarray  # (D,)
    rotation: np.ndarray  # (D, D): columns are the principal directions
    directions: np.ndarray  # (H, D) unit vectors of the boundary harmonics
    orders: np.ndarray  # (H,) Chebyshev orders
    amplitudes: np.ndarray  # (H,) relative amplitudes (signed)
    brightness: float

    @property
    def extent(self) -> float:
        """Radius of a ball that contains the nucleus."""
        return float(self.semi_axes.max() * (1.0 + np.abs(self.amplitudes).sum()))

    @property
    def mean_radius(self) -> float:
        """Geometric mean of the semi-axes."""
        return float(np.exp(np.log(self.semi_axes).mean()))

    def boundary_radius(self, direction: np.ndarray) -> float:
        """Distance from the centre to the boundary along a unit vector."""
        q = self.rotation.T @ direction
        ellipse = 1.0 / math.sqrt(float(np.sum((q / self.semi_axes) ** 2)))
        offsets = [np.float32(c) for c in direction]
        return ellipse * (1.0 + float(self.perturbation(offsets, np.float32(1.0))))

    def perturbation(self, offsets: Sequence[Any], norm: Any) -> Any:
        """Relative boundary perturbation in the directions ``offsets / norm``.

        `offsets` holds one (broadcastable) array per axis, `norm` their Euclidean length.
        """
        out: Any = np.float32(0.0)  # a scalar, or arrays broadcast from `offsets`
        for v, k, a in zip(self.directions, self.orders, self.amplitudes):
            t = sum(np.float32(vi) * o for vi, o in zip(v, offsets)) / norm
            # Chebyshev T_k(cos angle) = cos(k angle): smooth on the circle / sphere
            prev: Any = np.float32(1.0)
            cur: Any = t
            for _ in range(int(k) - 1):
                prev, cur = cur, 2.0 * t * cur - prev
            out = out + np.float32(a) * cur
        return out


def _random_rotation(ndim: int, rng: np.random.Generator) -> np.ndarray:
    if ndim == 2:
        angle = rng.uniform(0.0, np.pi)
        c, s = math.cos(angle), math.sin(angle)
        return np.array([[c, -s], [s, c]])
    q, r = np.linalg.qr(rng.normal(size=(ndim, ndim)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _random_unit(ndim: int, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    v = rng.normal(size=(ndim,) if size is None else (size, ndim))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _random_nucleus(
    cfg: SyntheticConfig, centre: np.ndarray, radius: float, rng: np.random.Generator
) -> _Nucleus:
    ndim = cfg.ndim
    ecc = rng.uniform(0.0, cfg.eccentricity)
    minor = radius * math.sqrt(1.0 - ecc**2)
    if ndim == 2:
        semi = np.array([radius, minor])
    else:
        ecc2 = rng.uniform(0.0, ecc)
        semi = np.array([radius, minor, radius * math.sqrt(1.0 - ecc2**2)])
    n_harmonics = 4 if ndim == 2 else 6
    orders = rng.integers(2, 6, size=n_harmonics)
    amplitudes = (
        cfg.irregularity * rng.uniform(0.5, 1.0, n_harmonics) * (2.0 / orders)
        * (2.0 * rng.integers(0, 2, n_harmonics) - 1.0)
    )
    return _Nucleus(
        centre=np.asarray(centre, float),
        semi_axes=semi,
        rotation=_random_rotation(ndim, rng),
        directions=_random_unit(ndim, rng, n_harmonics),
        orders=orders,
        amplitudes=amplitudes,
        brightness=float(rng.uniform(*cfg.brightness)),
    )


def _expected_count(cfg: SyntheticConfig) -> int:
    if cfg.n_objects is not None:
        return cfg.n_objects
    r_lo, r_hi = cfg.radius_px
    mean_r2 = (r_hi**3 - r_lo**3) / (3.0 * (r_hi - r_lo)) if r_hi > r_lo else r_lo**2
    squash = 1.0 - cfg.eccentricity / 4.0  # rough mean of sqrt(1 - e^2) for e ~ U(0, ecc)
    if cfg.ndim == 2:
        size = math.pi * mean_r2 * squash
    else:
        size = 4.0 / 3.0 * math.pi * mean_r2 ** 1.5 * squash**1.5 / cfg.z_spacing
    return min(MAX_LABEL, int(round(cfg.coverage * math.prod(cfg.shape) / size)))


def place_nuclei(cfg: SyntheticConfig, rng: np.random.Generator) -> list[_Nucleus]:
    """Random nuclei: isolated ones keep a gap, touching ones are set against a neighbour."""
    spacing = np.asarray(cfg.spacing)
    size = np.asarray(cfg.shape) * spacing
    nuclei: list[_Nucleus] = []
    centres = np.zeros((0, cfg.ndim))
    radii = np.zeros(0)
    for _ in range(_expected_count(cfg)):
        nucleus: _Nucleus | None = None
        if nuclei and rng.random() < cfg.touching_fraction:
            nucleus = _place_touching(cfg, nuclei, centres, radii, size, rng)
        if nucleus is None:
            radius = rng.uniform(*cfg.radius_px)
            for _attempt in range(30):
                centre = rng.uniform(0.0, size)
                dist = np.sqrt(np.sum((centres - centre) ** 2, axis=1))
                if np.all(dist >= 1.15 * (radii + 0.85 * radius)):
                    nucleus = _random_nucleus(cfg, centre, radius, rng)
                    break
        if nucleus is None:
            continue
        nuclei.append(nucleus)
        centres = np.vstack([centres, nucleus.centre])
        radii = np.append(radii, nucleus.mean_radius)
    return nuclei


def _place_touching(
    cfg: SyntheticConfig,
    nuclei: list[_Nucleus],
    centres: np.ndarray,
    radii: np.ndarray,
    size: np.ndarray,
    rng: np.random.Generator,
) -> _Nucleus | None:
    for _attempt in range(10):
        j = int(rng.integers(len(nuclei)))
        other = nuclei[j]
        candidate = _random_nucleus(cfg, np.zeros(cfg.ndim), rng.uniform(*cfg.radius_px), rng)
        u = _random_unit(cfg.ndim, rng)
        # boundaries meet along u, with a slight overlap that the label painting resolves
        dist = (other.boundary_radius(u) + candidate.boundary_radius(-u)) * rng.uniform(0.88, 0.98)
        centre = other.centre + u * dist
        if np.any(centre < 0.0) or np.any(centre >= size):
            continue
        gaps = np.sqrt(np.sum((centres - centre) ** 2, axis=1)) - 0.9 * (radii + candidate.mean_radius)
        gaps[j] = 1.0
        if np.all(gaps > 0.0):
            return dataclasses.replace(candidate, centre=centre)
    return None


def _depth(
    nucleus: _Nucleus, spacing: np.ndarray, shape: tuple[int, ...]
) -> tuple[tuple[slice, ...], np.ndarray] | None:
    """Relative depth ``1 - r / R(direction)`` inside the nucleus' bounding box (> 0 inside)."""
    lo = np.floor((nucleus.centre - nucleus.extent) / spacing).astype(int)
    hi = np.ceil((nucleus.centre + nucleus.extent) / spacing).astype(int) + 1
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, shape)
    if np.any(hi <= lo):
        return None
    ndim = len(shape)
    offsets = []  # sparse per-axis offsets from the centre, physical units
    for axis, (a, b, s, c) in enumerate(zip(lo, hi, spacing, nucleus.centre)):
        view = [1] * ndim
        view[axis] = b - a
        offsets.append((np.arange(a, b, dtype=np.float32) * np.float32(s) - np.float32(c)).reshape(view))
    rho2: Any = np.float32(0.0)
    for j in range(ndim):  # coordinates in the ellipsoid's frame, scaled by its semi-axes
        qj = sum(np.float32(nucleus.rotation[i, j] / nucleus.semi_axes[j]) * offsets[i]
                 for i in range(ndim))
        rho2 = rho2 + qj * qj
    norm = np.sqrt(sum(o * o for o in offsets))
    np.maximum(norm, np.float32(1e-6), out=norm)
    depth = 1.0 - np.sqrt(rho2) / (1.0 + nucleus.perturbation(offsets, norm))
    return tuple(slice(a, b) for a, b in zip(lo, hi)), depth.astype(np.float32)


def paint_labels(
    nuclei: list[_Nucleus], cfg: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Exact labels 1..N, the depth of each pixel in its object, and each label's brightness."""
    spacing = np.asarray(cfg.spacing)
    labels = np.zeros(cfg.shape, np.int32)
    depth = np.zeros(cfg.shape, np.float32)
    for index, nucleus in enumerate(nuclei, start=1):
        drawn = _depth(nucleus, spacing, cfg.shape)
        if drawn is None:
            continue
        box, d = drawn
        wins = d > depth[box]  # inside (d > 0) and deeper than any object painted here before
        labels[box][wins] = index
        depth[box][wins] = d[wins]
    # a pixel goes to the object it is deepest in; with irregular outlines that can split an
    # object, so keep each object's largest face-connected piece and give the rest to background
    min_size = max(4, int(0.1 * math.pi * cfg.radius_px[0] ** 2))
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        mine = labels[box] == index
        pieces, n_pieces = ndi.label(mine)
        if n_pieces > 1:
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0
            mine = pieces == int(np.argmax(sizes))
            drop = (pieces > 0) & ~mine
            labels[box][drop] = 0
            depth[box][drop] = 0.0
        if np.count_nonzero(mine) < min_size:  # a sliver cut off by the border or a neighbour
            labels[box][mine] = 0
            depth[box][mine] = 0.0
    present = np.unique(labels)
    present = present[present > 0]
    lut = np.zeros(len(nuclei) + 1, np.uint16)
    lut[present] = np.arange(1, len(present) + 1, dtype=np.uint16)
    brightness = [nuclei[i - 1].brightness for i in present]
    return lut[labels], depth, brightness

