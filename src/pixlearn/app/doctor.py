"""``pixlearn doctor``: check model files and images without running anything.

:func:`diagnose` reads and validates each model fully (header, members, the estimator's arrays or
the network's configuration bounds and tensor shapes: everything loading checks) without
predicting, and opens each image as prediction would (kind of file, declared size against the
limit and the memory available, dtype, NaN/Inf for files small enough to scan, axes) without
decoding large files. It says, per path, what would be accepted and what would be refused.
Torch is imported only when a network model is checked.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.images import available_memory, is_image_file, open_image
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Finding:
    """What was found about one path: ``ok`` or not, and a one-line description."""

    path: str
    ok: bool
    what: str


@dataclasses.dataclass(frozen=True)
class Report:
    """All findings of :func:`diagnose`; ``ok`` when nothing would be refused."""

    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    def lines(self) -> list[str]:
        """One line per finding and a summary line."""
        out = [f"{'ok     ' if f.ok else 'REFUSED'} {f.path}: {f.what}" for f in self.findings]
        refused = sum(not f.ok for f in self.findings)
        out.append(f"{len(self.findings)} checked, {refused} would be refused")
        return out


def is_model_path(path: Path) -> bool:
    """Whether `path` looks like a model: a ``.zip`` file or a folder holding ``model.json``."""
    return (path.is_file() and path.suffix.lower() == ".zip") or (path.is_dir() and (path / "model.json").exists())


def check_model(path: Path) -> tuple[Finding, Any]:
    """Load and validate the model at `path` (nothing is predicted); the finding and the model
    (``None`` when refused)."""
    from pixlearn.models.model_file import load_model

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = load_model(path, device="cpu")
    except PixlearnError as exc:
        return Finding(str(path), False, exc.message), None
    notes = "; ".join(str(w.message).removeprefix(f"{path}: ") for w in caught)
    if model.kind == "image-classifier":  # one class per image: no tiles, no halo
        what = (f"image classifier, {model.ndim}D, {model.n_channels} channel(s), classes "
                f"{', '.join(getattr(model, 'class_names', ()))}; loads and validates")
    else:
        what = (f"{model.kind} model, task {model.task}, {model.ndim}D, {model.n_channels} channel(s), "
                f"{model.n_outputs} output(s), halo {tuple(int(h) for h in _tuple(model.halo))}; loads and validates")
    return Finding(str(path), True, what + (f" ({notes})" if notes else "")), model


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def check_image(path: Path, *, axes: str | None = None, model: Any = None) -> Finding:
    """Open `path` as prediction does (headers, and the values of small files) and say what
    would be refused; against `model` too when one is given."""
    from pixlearn.data.axes import canonical_view

    try:
        array, found = open_image(path, axes=axes)
        view = canonical_view(array, found)
        shape = tuple(int(s) for s in view.shape)
        if model is not None:
            from pixlearn.predict.apply import check_image_for_model

            check_image_for_model(model, shape, path)
    except (PixlearnError, ValueError) as exc:
        message = exc.message if isinstance(exc, PixlearnError) else str(exc)
        return Finding(str(path), False, message)
    nbytes = int(array.dtype.itemsize) * int(_prod(array.shape))
    lazy = not isinstance(array, np.ndarray) or isinstance(array, np.memmap)
    free = available_memory()
    size = f"{nbytes / 2**20:.1f} MiB" if nbytes < 2**30 else f"{nbytes / 2**30:.1f} GiB"
    notes = []
    if lazy:
        notes.append("read tile by tile; values not scanned for NaN/Inf" if nbytes > 256 * 2**20
                     else "read tile by tile")
    if nbytes > free / 2:
        notes.append(f"larger than half the {free / 2**30:.1f} GiB of memory available: predict with --format zarr")
    what = f"image {tuple(int(s) for s in array.shape)} {array.dtype}, axes {found}, {size}"
    return Finding(str(path), True, what + (f" ({'; '.join(notes)})" if notes else ""))


def _prod(shape: Sequence[int]) -> int:
    total = 1
    for n in shape:
        total *= int(n)
    return total


def _images_in(folder: Path) -> tuple[list[Path], list[Finding]]:
    images, findings = [], []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if is_image_file(p):
            images.append(p)
        elif p.is_file():
            findings.append(Finding(str(p), True, "not an image file (by its suffix); ignored by predict"))
    if not images:
        findings.append(Finding(str(folder), False, "folder holds no images"))
    return images, findings


def diagnose(paths: Sequence[str | os.PathLike[str]], *, axes: str | None = None) -> Report:
    """Check every model and image among `paths` without predicting anything.

    Parameters
    ----------
    paths : sequence of path-like
        Model folders or ``.zip`` files, image files, folders of images. When exactly one valid
        model is among them, the images are also checked against it (dimensionality, channels).
    axes : str, optional
        Axes of the images (default: from metadata or inferred).

    Returns
    -------
    report : Report
        One :class:`Finding` per model, image or problem; ``report.ok`` when nothing would be
        refused.
    """
    findings: list[Finding] = []
    models: list[Any] = []
    images: list[Path] = []
    for item in (Path(p) for p in paths):
        if not os.path.lexists(item):
            findings.append(Finding(str(item), False, "no such file or folder"))
        elif is_model_path(item):
            finding, model = check_model(item)
            findings.append(finding)
            if model is not None:
                models.append(model)
        elif item.is_dir() and not is_image_file(item):
            found, notes = _images_in(item)
            images.extend(found)
            findings.extend(notes)
        else:
            images.append(item)
    model = models[0] if len(models) == 1 else None
    for image in images:
        findings.append(check_image(image, axes=axes, model=model))
    return Report(tuple(findings))
