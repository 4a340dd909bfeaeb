"""Will it fit? Memory estimates checked before a computation allocates anything.

Each parameter object states the peak memory of its computation (:meth:`memory_bytes`, a sum of
the large arrays it will hold, in float64 unless said otherwise); :func:`require` compares it
with the memory this machine has available now and refuses, with one line, what cannot fit.
"""

from __future__ import annotations

import os

from twolayer.errors import ResourceError

__all__ = ["available_bytes", "human", "require"]

#: the share of the available memory a computation may plan to use
HEADROOM = 0.8


def available_bytes() -> int:
    """Memory available to a new allocation: MemAvailable of /proc/meminfo, else physical RAM."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: do not refuse anything
        return 1 << 62


def human(nbytes: float) -> str:
    """``1.5 GiB``-style sizes."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} PiB"  # pragma: no cover


def require(nbytes: float, what: str, hint: str = "") -> None:
    """Raise :class:`ResourceError` if ``nbytes`` exceeds 80% of the available memory."""
    free = available_bytes()
    if nbytes > HEADROOM * free:
        raise ResourceError(f"{what} needs about {human(nbytes)} of memory; {human(free)} is "
                            f"available" + (f": {hint}" if hint else ""))
