"""Figure files: where they go (:func:`figure_paths`) and writing them (:func:`save_figure`).

Every figure twolayer writes goes through :func:`save_figure`: atomically (a temporary name in
the same folder, then a rename), at :data:`~twolayer.plotting.style.DPI`, with ``twolayer`` in
its metadata (PNG 'Software', PDF and SVG 'Creator') so that a later run knows it may replace it.
"""

from __future__ import annotations

import os
from pathlib import Path

from twolayer.errors import ParameterError
from twolayer.io import atomic
from twolayer.plotting.style import DPI

__all__ = ["MARK", "figure_paths", "save_figure"]

MARK = "twolayer"  # in the PNG 'Software' and PDF 'Creator' metadata of the figures we write
_FORMATS = ("png", "pdf", "svg")


def figure_paths(result: str | os.PathLike, out: str | os.PathLike | None = None
                 ) -> tuple[Path, Path]:
    """(PNG, PDF) paths: ``out`` (FILE.png or FILE.pdf) with both suffixes, or by default the
    result's own path with them (``sweep.nc`` → ``sweep.png``, ``sweep.pdf``)."""
    if out is None:
        base = Path(result)
        base = base.parent / base.stem
    else:
        p = Path(out)
        if p.suffix.lower() not in (".png", ".pdf"):
            raise ParameterError(f"the figure name must end in .png or .pdf (both are written); "
                                 f"got {str(out)!r}")
        base = p.parent / p.stem
    return Path(f"{base}.png"), Path(f"{base}.pdf")


def _ours(path: Path) -> bool:
    """A PNG or PDF that twolayer wrote (its metadata names twolayer)."""
    try:
        if path.stat().st_size > 200_000_000:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    magic = data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"%PDF-")
    return magic and MARK.encode() in data


def _check_target(p: Path, overwrite: bool) -> None:
    parent = p.parent if str(p.parent) else Path(".")
    if p.suffix.lower().lstrip(".") not in _FORMATS:
        raise ParameterError(f"cannot write the figure {str(p)!r}: use .png, .pdf or .svg")
    if p.is_dir():
        raise ParameterError(f"cannot write the figure {str(p)!r}: it is a directory")
    if not parent.is_dir():
        raise ParameterError(f"cannot write {str(p)!r}: directory {str(parent)!r} does "
                             "not exist")
    if p.exists() and not overwrite and not _ours(p):
        raise ParameterError(f"{str(p)!r} exists and is not a figure written by twolayer; "
                             "pass --overwrite to replace it")


def save_figure(fig, *paths: str | os.PathLike | None, overwrite: bool = False) -> list[Path]:
    """Write ``fig`` to each of ``paths`` (.png, .pdf or .svg; None skipped), each atomically.

    An existing file is replaced only if it is a figure written here (its metadata names
    twolayer) or with ``overwrite=True``; otherwise ParameterError, before anything is written.
    Returns the paths written.
    """
    import twolayer

    targets = [Path(p) for p in paths if p is not None]
    for p in targets:
        _check_target(p, overwrite)
    stamp = f"{MARK} {twolayer.__version__}"
    for p in targets:
        fmt = p.suffix.lower().lstrip(".")
        meta = {"Software": stamp} if fmt == "png" else {"Creator": stamp}
        with atomic(p) as (_, fd), os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=fmt, dpi=DPI, metadata=meta)
    return targets
