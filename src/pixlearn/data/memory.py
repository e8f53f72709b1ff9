"""Memory budgets: what ``--memory 2GiB`` means, the default budget, and what a process holds now.

A budget is a number of bytes that training or prediction may hold at its peak (resident memory of
the whole process). The default, :func:`default_memory_budget`, is :data:`DEFAULT_FRACTION` of the
machine's RAM, and never more than what is available now. Each stage splits its budget itself:
:func:`pixlearn.classical.fit.fit_pixel_classifier` between feature blocks, training samples and
trees; the prediction engine sizes tiles from what the budget leaves once the model is loaded.
"""

from __future__ import annotations

import os
import re

from pixlearn.data.checks import available_memory

__all__ = ["DEFAULT_FRACTION", "default_memory_budget", "format_bytes", "parse_memory", "resident_memory",
           "total_memory"]

#: Share of the machine's RAM that a run takes by default.
DEFAULT_FRACTION = 0.25
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}
#: The smallest budget accepted: the interpreter and the libraries alone take about this much.
MIN_BUDGET = 256 * 2**20


def parse_memory(text: str) -> int:
    """Bytes in ``"2GiB"``, ``"1.5G"``, ``"500MiB"``, ``"500MB"`` or ``"2000000000"``.

    ``K``, ``M``, ``G``, ``T`` and ``KB`` ... are powers of 1000, ``KiB`` ... powers of 1024;
    case is ignored.

    Parameters
    ----------
    text : str

    Returns
    -------
    bytes : int

    Raises
    ------
    ValueError
        Not a size, or less than :data:`MIN_BUDGET`.

    Examples
    --------
    >>> parse_memory("2GiB"), parse_memory("1.5g"), parse_memory("512 MiB")
    (2147483648, 1500000000, 536870912)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise ValueError(f"cannot read the memory size {text!r}; use e.g. 2GiB, 500MiB or 4G")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value < MIN_BUDGET:
        raise ValueError(f"a memory budget of {format_bytes(value)} is too small; give at least "
                         f"{format_bytes(MIN_BUDGET)}")
    return value


def format_bytes(n: float) -> str:
    """``"1.5 GiB"``, ``"300 MiB"``: a size as a person reads it.

    Examples
    --------
    >>> format_bytes(3 * 2**29), format_bytes(300 * 2**20)
    ('1.5 GiB', '300 MiB')
    """
    if n >= 2**30:
        return f"{n / 2**30:.3g} GiB"
    return f"{n / 2**20:.0f} MiB"


def total_memory() -> int:
    """Bytes of RAM of this machine (``/proc/meminfo``, ``sysconf``); 16 GiB when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return 16 * 2**30


def default_memory_budget(total: int | None = None, available: int | None = None) -> int:
    """The budget of a run that names none: :data:`DEFAULT_FRACTION` of the RAM, at most what is available.

    Parameters
    ----------
    total, available : int, optional
        Bytes of RAM and bytes available now (default: this machine's, measured now).

    Returns
    -------
    budget : int
        At least :data:`MIN_BUDGET`.

    Examples
    --------
    >>> default_memory_budget(total=16 * 2**30, available=12 * 2**30) / 2**30
    4.0
    >>> default_memory_budget(total=16 * 2**30, available=2**30) / 2**30
    1.0
    """
    total = total_memory() if total is None else total
    available = available_memory() if available is None else available
    return int(max(MIN_BUDGET, min(DEFAULT_FRACTION * total, available)))


def resident_memory() -> int:
    """Bytes this process holds in RAM now (``/proc/self/statm``; 0 where unknown)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0
