"""Reading the members of a model folder or zip file, every size and kind checked first.

A model file is untrusted input: its zip directory is checked (no duplicate, foreign, symlinked,
encrypted or oddly compressed members; declared sizes within limits and within half the
available memory) before anything is decompressed, and a folder's members must be regular files
of bounded size (a FIFO would block). Used for the model itself and for the zip inside a legacy
``classifier.skops`` member.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from pathlib import Path

from pixlearn.errors import ModelFileError

MAX_MEMBER_BYTES = 4 * 2**30
MAX_JSON_BYTES = 64 * 2**20


def member_limit(name: str) -> int:
    return MAX_JSON_BYTES if name.endswith(".json") else MAX_MEMBER_BYTES


def check_zip_entries(infos: list[zipfile.ZipInfo], allowed: tuple[str, ...] | None, what: str,
                       path: Path, budget: int) -> None:
    """Refuse duplicate, foreign, symlinked, encrypted or oddly compressed members and sizes past
    `budget` in total, from the zip directory alone (before anything is decompressed)."""
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        if allowed is not None and name not in allowed:
            raise ModelFileError(f"unexpected member {name!r} in {what}", path)
        if name in seen:
            raise ModelFileError(f"member {name!r} appears twice in {what}", path)
        seen.add(name)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ModelFileError(f"member {name!r} of {what} is a symbolic link", path)
        if info.flag_bits & 0x1:
            raise ModelFileError(f"member {name!r} of {what} is encrypted", path)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(
                f"member {name!r} of {what} uses compression method {info.compress_type}; "
                "pixlearn writes stored or deflated members only", path,
            )
        limit = member_limit(name) if allowed is not None else budget
        total += info.file_size
        if info.file_size > limit or total > budget:
            raise ModelFileError(f"member {name!r} of {what} is implausibly large ({info.file_size} bytes)", path)


def memory_budget() -> int:
    """Bytes a model file may expand to: the member limit, at most half the available memory."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return MAX_MEMBER_BYTES
    return int(min(MAX_MEMBER_BYTES, max(available // 2, 256 * 2**20)))


def read_members(path: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The members `names` of a model folder or zip file, each checked before it is read.

    Raises
    ------
    ModelFileError
        Missing path, a member that is not a regular file, foreign, duplicate, symlinked,
        encrypted or oddly compressed zip members, or sizes past the limits.
    """
    if not path.exists():
        raise ModelFileError("no such model file or folder", path)
    members: dict[str, bytes] = {}
    budget = memory_budget()
    if path.is_dir():
        for name in names:
            member = path / name
            if not os.path.lexists(member):
                continue
            try:
                info = member.stat()
            except OSError as exc:
                raise ModelFileError(f"cannot read {name} ({exc.strerror or exc})", path) from None
            if not stat.S_ISREG(info.st_mode):
                raise ModelFileError(f"{name} is not a regular file", path)
            if info.st_size > min(member_limit(name), budget):
                raise ModelFileError(f"{name} is implausibly large ({info.st_size} bytes)", path)
            members[name] = member.read_bytes()
        return members
    if not path.is_file():
        raise ModelFileError("not a regular file or folder", path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            check_zip_entries(infos, names, "model archive", path, budget)
            for entry in infos:
                members[entry.filename] = zf.read(entry)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ModelFileError(f"not a pixlearn model folder or zip file ({exc})", path) from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file ({exc.strerror or exc})", path) from None
    return members
