"""A stored result as a table: one row per plotted sample (its axis values, y, err, valid).

:func:`read` takes a single result (``twolayer onestep|sgd … --out``) or a merged sweep
(``twolayer run``) to a :class:`ResultTable`, in steps: check what the result is (:mod:`meta`),
make a single result look like a sweep of one point, pick the plotted values and what is
valid of them per model, average a swept seed, then flatten to rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from twolayer.errors import ParameterError
from twolayer.plotting.meta import Meta, as_point, meta, outcomes

CURVE_AXIS = {"onestep": "alpha", "sgd": "t"}
_NEEDS = {("onestep", "theory"): ("test_error", "converged"),
          ("onestep", "simulate"): ("test_error", "test_error_mean", "test_error_std"),
          ("sgd", "ode"): ("risk",),
          ("sgd", "simulate"): ("risk", "risk_mean", "risk_std")}


@dataclass
class ResultTable:
    """A result as one row per plotted sample: its axis values, y, err, valid, point."""

    model: str
    method: str
    params: dict[str, Any]
    curve_axis: str
    axes: list[str]  # the axis columns of ``rows``: sweep axes in file order, then inner axes
    zip_axes: list[str]  # the sweep axes along a zip sweep's ``point`` dimension
    sweep_axes: list[str]
    rows: pd.DataFrame  # axes…, y, err, valid, point
    points: pd.DataFrame  # per point (index = flat sweep index): status, reason, stop, ndiv
    seeds: int | None  # runs behind each simulated value
    description: str
    errors: str = "std"  # what ``err`` is: "std" over seeds (ddof = 1) or "se" = std/√seeds


@dataclass
class _Values:
    """The plotted values of a result on its own dimensions, and what is known per point."""

    y: xr.DataArray
    err: xr.DataArray | None  # ±1 std over seeds (None: a single value, no error bar)
    valid: xr.DataArray  # False: not drawn (not converged, non-finite, after a stop)
    t: xr.DataArray | None  # SGD: the time of each sample
    status: xr.DataArray  # per point
    reason: xr.DataArray
    stop: xr.DataArray  # where a run stopped or first diverged (NaN: it did not)
    ndiv: xr.DataArray  # how many runs diverged


def read(ds: xr.Dataset) -> ResultTable:
    """The :class:`ResultTable` of a single or merged result (ParameterError if it is none)."""
    m = meta(ds)
    if (m.model, m.method) not in _NEEDS:
        raise ParameterError("not a twolayer result: the file has no model and method "
                             "attributes (write one with `twolayer run` or a command's --out)")
    if not m.merged:  # a single result: as the one point of a sweep
        missing = _missing(ds, m)
        if missing:
            raise _incomplete(m, missing)
        ds = as_point(ds, m)
    sweep_axes = list(m.sweep_axes)
    sweep_dims = ["point"] if m.zipped else list(sweep_axes)
    _check_complete(ds, m, sweep_dims)
    average = m.method == "simulate" and "seed" in sweep_axes and not m.zipped
    if m.model == "onestep":
        values = _onestep_values(ds, m.method, average)
    else:
        values = _sgd_values(ds, m.method, average)
    if average:  # a swept seed: mean ± std over it, never an axis
        values = _average_seeds(values)
        sweep_dims.remove("seed")
        sweep_axes.remove("seed")
    rows, points, inner = _long_form(ds, values, sweep_axes, sweep_dims)
    return ResultTable(m.model, m.method, m.params, CURVE_AXIS[m.model], sweep_axes + inner,
                       list(sweep_axes) if m.zipped else [], sweep_axes, rows, points,
                       _runs(ds, m), m.description)


def with_errors(data: ResultTable, errors: str) -> ResultTable:
    """``data`` with its error bars as ``errors``: "std" (±1 std over the seeds, ddof = 1, as
    stored) or "se" (±1 standard error of the mean, std/√N with N = ``data.seeds``)."""
    import dataclasses

    if errors not in ("std", "se"):
        raise ParameterError(f"errors must be 'std' or 'se'; got {errors!r}")
    if errors == data.errors or data.seeds is None:
        return dataclasses.replace(data, errors=errors)
    rows = data.rows.copy()
    rows["err"] = rows["err"] / math.sqrt(data.seeds)
    return dataclasses.replace(data, rows=rows, errors=errors)


# --------------------------------------------------------------------------- checks
def _missing(ds: xr.Dataset, m: Meta) -> list[str]:
    return [v for v in _NEEDS[(m.model, m.method)] if v not in ds.variables]


def _incomplete(m: Meta, missing: list[str]) -> ParameterError:
    return ParameterError(f"not a complete twolayer {m.model} {m.method} result: no "
                          f"{missing[0]!r} variable")


def _check_complete(ds: xr.Dataset, m: Meta, sweep_dims: list[str]) -> None:
    outcome = outcomes(ds)
    if outcome is None or any(d not in ds.dims for d in sweep_dims):
        raise ParameterError("not a twolayer result: no per-point 'status' on the sweep axes")
    missing = _missing(ds, m)
    if not missing:
        return
    status, reason = outcome
    if (status.values == "ok").any():
        raise _incomplete(m, missing)
    first = np.asarray(reason.values).ravel()[0]
    raise ParameterError(f"nothing to plot: every point of this result failed ({first})")


def _runs(ds: xr.Dataset, m: Meta) -> int | None:
    """Simulations: the runs behind each plotted value (the seeds averaged over)."""
    if m.method != "simulate":
        return None
    return ds.sizes["seed"] if "seed" in ds.dims else int(m.param("seeds", 1))


# --------------------------------------------------------------------------- values per model
def _point_values(ds: xr.Dataset, y, err, valid, t=None) -> _Values:
    status, reason = outcomes(ds)
    return _Values(y, err, valid, t, status, reason,
                   stop=xr.full_like(status, np.nan, dtype=float),
                   ndiv=xr.full_like(status, 0, dtype=float))


def _onestep_values(ds: xr.Dataset, method: str, average: bool) -> _Values:
    """Test error; the theory's non-converged α and non-finite simulated errors invalid."""
    if method == "theory":
        y = ds["test_error"]
        return _point_values(ds, y, None, ds["converged"].astype(bool) & np.isfinite(y))
    if average:  # one run per point: its test_error, averaged over the swept seed later
        y = ds["test_error"]
        return _point_values(ds, y, None, np.isfinite(y))
    y = ds["test_error_mean"]
    return _point_values(ds, y, ds["test_error_std"], np.isfinite(y))


def _sgd_values(ds: xr.Dataset, method: str, average: bool) -> _Values:
    """Risk over time; invalid after the ODE stopped or from the first diverged run on."""
    if method == "simulate" and not average:
        y, err = ds["risk_mean"], ds["risk_std"]
    else:
        y, err = ds["risk"], None
    t = ds["t"] if "t" in ds.indexes else ds["t_values"]  # a zip sweep: a time row per point
    v = _point_values(ds, y, err, np.isfinite(y) & np.isfinite(t), t)
    if method == "ode":
        v.stop = ds["t_stop"].where(v.status != "ok")
        v.valid = v.valid & ~(t > ds["t_stop"])
        return v
    at = ds["diverged_at"]
    per_seed = "seed" in at.dims and not average
    first = at.min("seed") if per_seed else at
    v.valid = v.valid & ~(t >= first)
    v.stop = first
    v.ndiv = np.isfinite(at).sum("seed") if per_seed else np.isfinite(at).astype(float)
    return v


def _average_seeds(v: _Values) -> _Values:
    """Mean ± std (ddof = 1) over the swept ``seed``; a point is as bad as its worst seed."""
    yv = v.y.where(v.valid)
    y = yv.mean("seed", skipna=False)
    err = yv.std("seed", ddof=1, skipna=False) if yv.sizes["seed"] > 1 else xr.zeros_like(y)
    status, reason = _worst(v.status, v.reason, "seed")
    t = v.t
    if t is not None and "seed" in t.dims:
        t = t.isel(seed=0, drop=True)
    return _Values(y, err, v.valid.all("seed"), t, status, reason, v.stop.min("seed"),
                   v.ndiv.sum("seed"))


def _worst(status: xr.DataArray, reason: xr.DataArray, dim: str):
    """Per point, the first status along ``dim`` that is not ok (and its reason)."""
    s = status.transpose(..., dim).values
    r = reason.transpose(..., dim).values
    out_s = np.empty(s.shape[:-1], dtype=object)
    out_r = np.empty(s.shape[:-1], dtype=object)
    for idx in np.ndindex(out_s.shape):
        bad = [i for i, v in enumerate(s[idx]) if v != "ok"]
        j = bad[0] if bad else 0
        out_s[idx], out_r[idx] = s[idx][j], r[idx][j]
    dims = [d for d in status.transpose(..., dim).dims if d != dim]
    return xr.DataArray(out_s, dims=dims), xr.DataArray(out_r, dims=dims)


# --------------------------------------------------------------------------- rows
def numeric(col: pd.Series) -> bool:
    """A column of numbers (not booleans, not names)."""
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def keys(rows: pd.DataFrame, cols: list[str]) -> list[tuple]:
    """The distinct value tuples of ``cols`` in order of appearance (sorted if one number)."""
    if not cols:
        return [()]
    keys = list(dict.fromkeys(map(tuple, rows[cols].itertuples(index=False))))
    if len(cols) == 1 and numeric(rows[cols[0]]):
        keys.sort(key=lambda k: k[0])
    return keys


def select(rows: pd.DataFrame, cols, key) -> pd.DataFrame:
    """The rows whose ``cols`` have the values ``key``."""
    mask = np.ones(len(rows), dtype=bool)
    for col, v in zip(cols, key, strict=True):
        mask &= (rows[col] == v).values
    return rows[mask]



def _long_form(ds: xr.Dataset, v: _Values, sweep_axes: list[str], sweep_dims: list[str]):
    """(rows, points, inner axes): one row per sample, one entry per sweep point."""
    y = v.y.transpose(*sweep_dims, ...)
    shape = tuple(y.sizes[d] for d in sweep_dims)
    inner = [d for d in ("lam", "alpha") if d in y.dims and d not in sweep_axes]
    if v.t is not None:
        inner.append("t")
    columns = {a: _flat(v.t if a == "t" else ds[a], y) for a in sweep_axes + inner}
    point = xr.DataArray(np.arange(math.prod(shape)).reshape(shape), dims=sweep_dims)
    columns["point"] = _flat(point, y)
    columns["y"] = _flat(y, y).astype(float)
    columns["err"] = np.full(y.size, np.nan) if v.err is None else _flat(v.err, y).astype(float)
    columns["valid"] = _flat(v.valid, y).astype(bool)

    def per_point(da, cast):
        return [cast(s) for s in da.transpose(*sweep_dims).values.ravel()]

    points = pd.DataFrame({"status": per_point(v.status, str),
                           "reason": per_point(v.reason, str),
                           "stop": per_point(v.stop, float),
                           "ndiv": per_point(v.ndiv, float)})
    return pd.DataFrame(columns), points, inner


def _flat(da: xr.DataArray, like: xr.DataArray) -> np.ndarray:
    """``da`` broadcast against ``like`` (whose dimensions hold all of da's), C order."""
    da = xr.DataArray(np.asarray(da.values), dims=da.dims)
    return da.broadcast_like(xr.DataArray(np.empty(like.shape), dims=like.dims)).transpose(
        *like.dims).values.ravel()
