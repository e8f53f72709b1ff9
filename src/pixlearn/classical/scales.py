"""Scales against the images they are used on: :func:`sigma_warnings`.

A filter-bank scale larger than an image along some axis (an isotropic sigma of 10 on a stack of
5 serial sections) sees nothing but the image reflected at its borders. Training and prediction
warn about it, usually a sign that the voxel spacing of an anisotropic stack is missing.
"""

from __future__ import annotations

from collections.abc import Sequence

from pixlearn.classical.features import FeatureConfig, voxel_spacing

__all__ = ["sigma_warnings"]

#: Names of the spatial axes, per number of axes.
AXIS_NAMES: dict[int, tuple[str, ...]] = {2: ("row", "column"), 3: ("plane", "row", "column")}


def sigma_warnings(
    cfg: FeatureConfig, shape: Sequence[int], spacing: Sequence[float] | None = None
) -> list[str]:
    """What is wrong with the scales for an image of spatial `shape`: one line per axis that
    some scale exceeds.

    A scale of more voxels along an axis than the image has there (an isotropic sigma of 10 on a
    stack of 5 sections) describes nothing but the reflected image; it usually means that the
    voxel spacing is missing (``--spacing z,y,x``, or a file that states it).

    Parameters
    ----------
    cfg : FeatureConfig
    shape : sequence of int
        Spatial shape of an image.
    spacing : sequence of float, optional
        Overrides ``cfg.spacing``.

    Returns
    -------
    warnings : list of str
        Empty when every scale fits.

    Examples
    --------
    >>> sigma_warnings(FeatureConfig(), (5, 1024, 1024))  # doctest: +ELLIPSIS
    ['sigma 10 is 10 voxels along the planes, more than the 5 planes of the image: ...']
    >>> sigma_warnings(FeatureConfig(spacing=(10.9, 1.0, 1.0)), (5, 1024, 1024))
    []
    """
    ndim = len(shape)
    if ndim not in (2, 3):
        raise ValueError(f"features need 2 or 3 spatial axes, got {ndim}")
    sp = voxel_spacing(cfg, ndim, spacing)
    out = []
    for axis, (n, s) in enumerate(zip(shape, sp)):
        over = [sigma for sigma in cfg.sigmas if sigma / s > n]
        if over:
            name = AXIS_NAMES[ndim][axis]
            hint = ("give the voxel spacing (FeatureConfig.spacing; --spacing z,y,x of pixlearn train) if the "
                    "planes are thicker than the pixels are wide, or use" if ndim == 3 and axis == 0 and
                    cfg.spacing is None and spacing is None else "use")
            values = ", ".join(f"{v:g}" for v in over)
            voxels = f"{over[0] / s:.3g}" + ("" if len(over) == 1 else f"-{over[-1] / s:.3g}")
            what = f"sigma {values} is" if len(over) == 1 else f"sigmas {values} are"
            out.append(f"{what} {voxels} voxels along the {name}s, more than the {n} {name}s of the image: "
                       f"those features see mostly the image reflected at its borders; {hint} smaller sigmas")
    return out
