"""Saving results: NetCDF files with the parameters and version in the attributes, JSON output."""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import xarray as xr

from twolayer.errors import ParameterError

__all__ = ["atomic", "check_writable", "clean_stale_parts", "jsonable", "load_netcdf",
           "parts", "pid_alive", "save_netcdf", "temporary", "write_error"]

_PART = ".part"


_STALE_ELSEWHERE_S = 86400.0  # another machine's (or an older twolayer's) temporaries: a day


def _host() -> str:
    import hashlib
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temporary(p: Path) -> tuple[Path, int]:
    """A new hidden file next to ``p``, open for writing, ``.<name>.<pid>-<host>.<random>.part``,
    with the permissions the umask gives a new file (0666 & ~umask; not mkstemp's 0600, so that
    collaborators can read a shared store). The writer's PID and (a hash of) its host name let
    :func:`clean_stale_parts` tell an abandoned temporary from one being written."""
    import secrets

    while True:
        tmp = p.parent / f".{p.name}.{os.getpid()}-{_host()}.{secrets.token_hex(4)}{_PART}"
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as e:
            raise write_error(p, e) from None


@contextlib.contextmanager
def atomic(p: Path) -> Iterator[tuple[Path, int]]:
    """Write ``p`` atomically: the body writes the :func:`temporary` (its path and open file
    descriptor), which then replaces ``p``. On any failure the temporary is removed; an OSError
    (disk full, a folder made read-only) becomes a StoreError of one line."""
    tmp, fd = temporary(p)
    try:
        yield tmp, fd
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise write_error(p, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_error(p: str | os.PathLike, e: OSError):
    """The StoreError (one line) for an OSError while writing ``p``."""
    from twolayer.errors import StoreError

    return StoreError(f"cannot write {str(p)!r}: {e.strerror or e}")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return False
    return True


def parts(folder: str | os.PathLike, *, before: float,
          recursive: bool = False) -> list[tuple[Path, bool]]:
    """The temporaries (``*.part``) in ``folder``, each with whether it is stale.

    A temporary of :func:`temporary` written on this machine is stale when its writer's PID
    is not running and it is older than ``before`` (the run's start); one of another machine,
    or without a PID (an older twolayer's mkstemp names), only when it is a day old.
    """
    import re
    import time

    root = Path(folder)
    if not root.is_dir():
        return []
    ours = re.compile(r"^\..+\.(\d+)-([0-9a-f]{8})\.[0-9a-f]+\.part$")
    legacy = re.compile(r"^\..+\.[0-9a-z_]{8}\.part$")
    host, now = _host(), time.time()
    found = []
    for path in root.rglob(f"*{_PART}") if recursive else root.glob(f"*{_PART}"):
        m = ours.match(path.name)
        if m is None and legacy.match(path.name) is None:
            continue
        try:
            mtime = path.stat().st_mtime
            if not path.is_file():
                continue
        except OSError:
            continue
        if m is not None and m.group(2) == host:
            stale = mtime < before and not pid_alive(int(m.group(1)))
        else:
            stale = mtime < min(before, now - _STALE_ELSEWHERE_S)
        found.append((path, stale))
    return found


def clean_stale_parts(folder: str | os.PathLike, *, before: float,
                      recursive: bool = False) -> int:
    """Remove the abandoned temporaries (``*.part``) of writers killed in ``folder`` (stale as
    :func:`parts` says: never a live writer's). Returns how many were removed; files that
    cannot be removed are left."""
    removed = 0
    for path, stale in parts(folder, before=before, recursive=recursive):
        if stale:
            try:
                path.unlink()
                removed += 1
            except OSError:
                continue
    return removed


def check_writable(path: str | os.PathLike | None, *, overwrite: bool = False) -> Path | None:
    """Fail early (ParameterError) if ``path`` cannot be written or exists (unless overwrite)."""
    if path is None:
        return None
    p = Path(path)
    if p.exists() and not overwrite:
        raise ParameterError(f"output file {str(p)!r} exists; pass --overwrite to replace it")
    if p.is_dir():
        raise ParameterError(f"output path {str(p)!r} is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ParameterError(f"cannot write {str(p)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ParameterError(f"cannot write {str(p)!r}: directory is not writable")
    return p


def save_netcdf(ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``ds`` as NetCDF (booleans stored as int8; attributes kept).

    The file appears atomically: it is written under a unique temporary name in the same folder,
    then renamed, so a killed process never leaves a half-written ``path``. It gets the mode the
    umask gives a new file. A failed write (disk full, read-only folder) raises StoreError.
    """
    p = check_writable(path, overwrite=overwrite)
    out = ds.copy()
    for name, var in list(out.variables.items()):
        if var.dtype == bool:
            out[name] = var.astype("int8")
            out[name].attrs["dtype"] = "bool"
    with atomic(p) as (tmp, fd):
        os.close(fd)
        out.to_netcdf(tmp, engine="scipy")
    return p


def load_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """Read a file written by :func:`save_netcdf` into memory (booleans restored)."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"no such result file: {str(p)!r}")
    try:
        with xr.open_dataset(p, engine="scipy") as f:
            ds = f.load()
    except (OSError, ValueError, TypeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]  # one line
        raise ParameterError(f"cannot read {str(p)!r} as NetCDF: {first}") from None
    for name, var in list(ds.variables.items()):
        if var.attrs.get("dtype") == "bool":
            attrs = {k: v for k, v in var.attrs.items() if k != "dtype"}
            ds[name] = var.astype(bool)
            ds[name].attrs = attrs
    return ds


def jsonable(x):
    """Nested lists/floats for JSON; NaN and inf become null (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def dumps(obj) -> str:
    return json.dumps(jsonable(obj), allow_nan=False)
