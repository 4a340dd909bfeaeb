"""Saving results: NetCDF files with the parameters and version in the attributes, JSON output."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from twolayer import _lazy_dask
from twolayer.errors import ParameterError

__all__ = ["check_writable", "jsonable", "load_netcdf", "save_netcdf"]

_lazy_dask.install()  # building a result from NumPy arrays need not import dask.array


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
    then renamed, so a killed process never leaves a half-written ``path``.
    """
    p = check_writable(path, overwrite=overwrite)
    out = ds.copy()
    for name, var in list(out.variables.items()):
        if var.dtype == bool:
            out[name] = var.astype("int8")
            out[name].attrs["dtype"] = "bool"
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent or ".")
    os.close(fd)
    try:
        out.to_netcdf(tmp, engine="scipy")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
