"""Atomic outputs: write under a temporary name, rename when complete."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds.

    On an exception the temporary file or folder is removed and `path` is left untouched.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "out.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "out.txt").read_text()
    'done'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        yield tmp
        _replace(tmp, path)
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            tmp.unlink()
        raise


def _replace(tmp: Path, path: Path) -> None:
    """Move `tmp` to `path`. An existing folder (or a file replaced by a folder) is first moved
    aside under a temporary name and removed only once `tmp` is in place, so that `path` always
    holds either the old or the new content. Callers decide whether `path` may be replaced."""
    if not os.path.lexists(path) or (not path.is_dir() and not tmp.is_dir()):
        os.replace(tmp, path)  # a file over a file (or nothing): atomic
        return
    old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.replaced.partial")
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)

