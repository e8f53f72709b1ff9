"""Folders of images: listing them, pairing raw images with annotations, splits."""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from pixlearn.data.formats import IMAGE_SUFFIXES, file_stem, is_image_file
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)


def list_images(inputs: Sequence[str | os.PathLike[str]], *,
                exclude: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    """Expand files, folders and glob patterns into a sorted list of image paths.

    Parameters
    ----------
    inputs : sequence of path-like
        Image files, folders (their image files, not recursive) or glob patterns.
    exclude : sequence of path-like
        Folders whose contents are never listed (an output folder inside an input folder:
        a program never takes its own outputs as inputs). A folder or pattern that lists only
        excluded files is an error like one that lists nothing.

    Returns
    -------
    paths : list of Path

    Raises
    ------
    PixlearnError
        For an input that matches nothing.
    """
    excluded = [Path(e).resolve() for e in exclude if Path(e).is_dir()]

    def kept(path: Path, base: Path) -> bool:
        # only folders below what the user listed: an input folder that is itself the output
        # folder is listed, and refused by whoever writes there
        base = base.resolve()
        resolved = path.resolve()
        return not any((resolved == e or e in resolved.parents) and e != base and e not in base.parents
                       for e in excluded)

    paths: list[Path] = []
    for item in inputs:
        item_str = os.fspath(item)
        p = Path(item_str)
        if p.is_dir() and not is_image_file(p):
            found = sorted(c for c in p.iterdir() if is_image_file(c) and not c.name.startswith(".") and kept(c, p))
            if not found:
                raise PixlearnError("folder holds no images " f"({', '.join(IMAGE_SUFFIXES)})", p)
            paths.extend(found)
        elif p.exists():
            paths.append(p)
        elif any(ch in item_str for ch in "*?["):
            base = Path(re.split(r"[*?\[]", item_str, maxsplit=1)[0] or ".")
            base = base if item_str[len(os.fspath(base)):][:1] in ("", os.sep) and base.is_dir() else base.parent
            found = sorted(Path(m) for m in glob.glob(item_str) if is_image_file(m) and kept(Path(m), base))
            if not found:
                raise PixlearnError("pattern matches no images", item_str)
            paths.extend(found)
        else:
            raise PixlearnError("no such file or folder", p)
    return paths


def images_by_stem(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """The images (or label images) of `folder` by file stem.

    Raises
    ------
    PixlearnError
        Not a folder, no images in it, or two files of one stem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PixlearnError("not a folder", folder)
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not is_image_file(path):
            continue
        stem = file_stem(path)
        if stem in found:
            raise PixlearnError(f"two files share the name {stem!r}: {found[stem].name}, {path.name}", folder)
        found[stem] = path
    if not found:
        raise PixlearnError("folder holds no images", folder)
    return found


def find_pairs(
    image_dir: str | os.PathLike[str],
    label_dir: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
) -> list[tuple[Path, Path]]:
    """Match raw images with their annotations by file stem.

    Parameters
    ----------
    image_dir, label_dir : path-like
        Folders of images; ``a.tif`` pairs with ``a.tif``, ``a.png`` or ``a.ome.tif``.
    names : sequence of str, optional
        Only these stems (e.g. one side of a ``split.json``); files of other stems are ignored.

    Returns
    -------
    pairs : list of (Path, Path)
        Sorted by stem.

    Raises
    ------
    PixlearnError
        A missing folder, no images, a duplicate stem, or images without annotations (or the
        reverse); the message lists the names.
    """
    images, labels = images_by_stem(image_dir), images_by_stem(label_dir)
    if names is not None:
        wanted = set(names)
        unknown = sorted(wanted - set(images))
        if unknown:
            raise PixlearnError(f"no images named {_names(unknown)}", image_dir)
        images = {k: v for k, v in images.items() if k in wanted}
        labels = {k: v for k, v in labels.items() if k in wanted}
    no_label = sorted(set(images) - set(labels))
    no_image = sorted(set(labels) - set(images))
    if no_label or no_image:
        parts = []
        if no_label:
            parts.append(f"images without annotation in {label_dir}: {_names(no_label)}")
        if no_image:
            parts.append(f"annotations without image in {image_dir}: {_names(no_image)}")
        raise PixlearnError("; ".join(parts), image_dir)
    return [(images[s], labels[s]) for s in sorted(images)]


def _names(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def read_split(dataset_dir: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read a data set's ``split.json`` (``{"train": [...], "test": [...]}``).

    Raises
    ------
    PixlearnError
        When the file is missing or malformed.
    """
    path = Path(dataset_dir) / "split.json"
    try:
        split = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PixlearnError(f"cannot read split ({exc})", path) from exc
    if not isinstance(split, dict):
        raise PixlearnError("split must map names to lists", path)
    return {str(k): [str(n) for n in v] for k, v in split.items()}

