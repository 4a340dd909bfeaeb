"""The merged result of a sweep (one xarray Dataset) and its summary.

Layout of the Dataset, for a plot command or a user:

- the sweep axes are dimensions with their values as coordinates (``mode = "zip"``: one
  ``point`` dimension, each axis a coordinate along it); a swept list parameter (``alpha``,
  ``lam``) replaces the library's own dimension of that name;
- every variable of the library's result keeps its dimensions after the sweep dimensions
  (``test_error`` on (eta, alpha, lam), ``risk`` on (gamma, seed, t) …); scalar numeric
  attributes of the per-point results (sRF ``spike``, ``alignment``; ODE ``t_stop``, ``nfev``)
  become variables on the sweep dimensions;
- a coordinate that differs between points (the exact SGD times ``t`` when γ, p or d are swept)
  becomes positional, its values kept in ``<dim>_values`` on (sweep dims, dim); shorter ones
  (fewer ``seed`` runs) are padded with NaN;
- ``status`` (one of :data:`twolayer.results.STATUSES`), ``reason`` and
  ``point_key`` (the content hash) per point; a point without data is NaN (False for booleans);
- attributes: ``model``, ``method``, ``sweep_mode``, ``sweep_axes`` (JSON list), ``params``
  (JSON, the base parameters with defaults), ``config`` (the TOML text), ``version``,
  ``experiment_key``,
  ``counts`` and ``timings`` (JSON), ``point_seconds`` and ``point_cached`` (C order).

Every data variable is a deterministic function of the configuration: run-dependent facts
(timings, what was cached) live in the attributes only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from twolayer.experiments.store import Record
from twolayer.results import is_sweep, validate

__all__ = ["format_summary", "merge", "summarize"]

_TIMING_ATTRS = {"seconds", "us_per_step_per_run"}


def _prepare(ds: xr.Dataset, axes: Mapping[str, Sequence]) -> xr.Dataset:
    """Drop the length-1 library dimensions that a sweep axis replaces; attrs → variables."""
    for name in axes:
        if name in ds.dims:
            if ds.sizes[name] != 1:
                raise ValueError(f"point result has {ds.sizes[name]} entries along swept {name!r}")
            ds = ds.isel({name: 0}).drop_vars(name)
        elif name in ds.variables:
            ds = ds.drop_vars(name)
    extra = {}
    for k, v in ds.attrs.items():
        numeric = isinstance(v, (int, float, np.integer, np.floating))
        if k in _TIMING_ATTRS or not numeric or isinstance(v, (bool, np.bool_)):
            continue
        extra[k if k not in ds.variables and k not in axes else f"attr_{k}"] = ((), v)
    ds = ds.assign(extra)
    ds.attrs = {}
    return ds


def _fill(dtype: np.dtype, missing: bool) -> tuple[np.dtype, Any]:
    if dtype.kind == "b":
        return dtype, False
    if np.issubdtype(dtype, np.integer):
        return (np.dtype(float), np.nan) if missing else (dtype, 0)
    if np.issubdtype(dtype, np.inexact):
        return dtype, np.nan
    return np.dtype(object), ""


def _axis_values(vals: Sequence) -> np.ndarray:
    """Coordinate values of an axis; d = ["inf", 500] becomes floats [inf, 500]."""
    numeric = [not isinstance(v, str) or v == "inf" for v in vals]
    if all(numeric) and not all(isinstance(v, str) for v in vals):
        return np.array([np.inf if v == "inf" else v for v in vals], dtype=float)
    return np.array(list(vals))


def _same(arrays: list[np.ndarray]) -> bool:
    a0 = arrays[0]
    nan_ok = np.issubdtype(a0.dtype, np.inexact)
    return all(a.shape == a0.shape and np.array_equal(a, a0, equal_nan=nan_ok) for a in arrays)


def merge(axes: Mapping[str, Sequence], mode: str, entries: Sequence[tuple[tuple, str]],
          records: Mapping[str, Record]) -> xr.Dataset:
    """One Dataset from per-point records; ``entries`` = [(index in the sweep grid, key)]."""
    zipped = mode == "zip" and bool(axes)
    sweep_dims = ("point",) if zipped else tuple(axes)
    shape = (len(next(iter(axes.values()))),) if zipped else tuple(len(v) for v in axes.values())
    prepared = {idx: _prepare(records[key].data, axes) for idx, key in entries
                if records[key].data is not None}
    dss = list(prepared.values())

    # inner dimensions: shared index, padded, or positional with per-point values
    sizes: dict[str, int] = {}
    for ds in dss:
        for d, n in ds.sizes.items():
            sizes[d] = max(sizes.get(d, 0), n)
    coords: dict[str, Any] = {}
    demoted: list[str] = []
    for d in sizes:
        vals = [ds.indexes[d].values for ds in dss if d in ds.indexes]
        if not vals:
            continue
        longest = max(vals, key=len)
        if len(vals) == sum(d in ds.dims for ds in dss) and all(
                _same([v, longest[: len(v)]]) for v in vals):
            coords[d] = (d, longest)
        else:
            demoted.append(d)

    data: dict[str, Any] = {}
    names = list(dict.fromkeys(n for ds in dss for n in ds.variables if n not in ds.indexes))
    for name in names:
        present = [(idx, ds[name].variable) for idx, ds in prepared.items() if name in ds.variables]
        dims = present[0][1].dims
        if any(v.dims != dims for _, v in present):
            raise ValueError(f"variable {name!r} has different dimensions at different points")
        inner = tuple(sizes[d] for d in dims)
        missing = len(present) < len(entries) or any(v.shape != inner for _, v in present)
        is_coord = any(name in ds.coords for ds in dss)
        values = [v.values for _, v in present]
        if is_coord and not missing and _same(values):
            coords[name] = (dims, values[0])
            continue
        dtype, fill = _fill(values[0].dtype, missing)
        arr = np.full(shape + inner, fill, dtype=dtype)
        for (idx, _), v in zip(present, values, strict=True):
            arr[idx + tuple(slice(0, s) for s in v.shape)] = v
        (coords if is_coord else data)[name] = (sweep_dims + dims, arr)
    for d in demoted:
        arr = np.full((*shape, sizes[d]), np.nan)
        for idx, ds in prepared.items():
            if d in ds.indexes:
                v = np.asarray(ds.indexes[d].values, dtype=float)
                arr[(*idx, slice(0, v.size))] = v
        coords[f"{d}_values"] = ((*sweep_dims, d), arr)

    for a, vals in axes.items():
        coords[a] = (sweep_dims[0] if zipped else a, _axis_values(vals))
    status = np.empty(shape, dtype=object)
    reason = np.empty(shape, dtype=object)
    keys = np.empty(shape, dtype=object)
    for idx, key in entries:
        rec = records[key]
        status[idx], reason[idx], keys[idx] = rec.status, rec.reason, key
    data["status"] = (sweep_dims, status)
    data["reason"] = (sweep_dims, reason)
    data["point_key"] = (sweep_dims, keys)
    return xr.Dataset(data, coords=coords)


# --------------------------------------------------------------------------- summary
def _json_attr(ds: xr.Dataset, name: str, default):
    try:
        return json.loads(ds.attrs[name])
    except (KeyError, TypeError, ValueError):
        return default


def _scalar(v):
    v = v.item() if hasattr(v, "item") else v
    return round(v, 12) if isinstance(v, float) else v


def summarize(ds: xr.Dataset) -> dict[str, Any]:
    """What ``twolayer show`` prints: model, method, status, axes, seeds, counts, failures.

    ``ds`` is checked against the result schema first (:func:`twolayer.results.validate`).
    """
    validate(ds)
    head = {"model": ds.attrs["model"], "method": ds.attrs["method"],
            "version": ds.attrs["version"], "params": json.loads(ds.attrs["params"]),
            "status": ds.attrs["status"], "message": ds.attrs["message"]}
    if not is_sweep(ds):  # a single result written by --out
        return {"kind": "single", **head, "dims": dict(ds.sizes),
                "variables": list(ds.data_vars)}
    axis_names = _json_attr(ds, "sweep_axes", [])
    sweep_dims = ["point"] if ds.attrs.get("sweep_mode") == "zip" and axis_names else axis_names
    axes = {a: [_scalar(v) for v in ds[a].values] for a in axis_names}
    params = head["params"]
    status = ds["status"]
    failed = []
    for idx in np.ndindex(status.shape):  # () for a sweep-less experiment: one point
        if status.values[idx] == "ok":
            continue
        sel = dict(zip(sweep_dims, (int(i) for i in idx), strict=True))
        point = {a: _scalar(ds[a].isel({k: v for k, v in sel.items() if k in ds[a].dims}).values)
                 for a in axis_names}
        failed.append({"point": point, "status": str(status.values[idx]),
                       "reason": str(ds["reason"].values[idx])})
    seeds = params.get("seeds") if ds.attrs.get("method") == "simulate" else None
    if "seeds" in axes:
        seeds = axes["seeds"]
    return {
        "kind": "experiment", **head, "description": ds.attrs.get("description", ""),
        "mode": ds.attrs.get("sweep_mode"), "axes": axes, "seeds": seeds,
        "dims": {d: int(n) for d, n in ds.sizes.items()}, "variables": list(ds.data_vars),
        "params": params, "counts": _json_attr(ds, "counts", {}), "failed": failed,
        "timings": _json_attr(ds, "timings", {}), "executor": ds.attrs.get("executor"),
        "created": ds.attrs.get("created"), "experiment_key": ds.attrs.get("experiment_key"),
    }


def _short(values: list, n: int = 8) -> str:
    txt = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    if len(txt) > n:
        txt = [*txt[: n // 2], "…", *txt[-n // 2:]]
    return "[" + ", ".join(txt) + "]"


def format_summary(s: dict[str, Any], path: str = "") -> str:
    """Human-readable lines for :func:`summarize`'s dict."""
    if s["kind"] == "single":
        lines = [f"{path}: a single {s['model'] or ''} {s['method'] or ''} result "
                 f"(twolayer {s['version']})",
                 "  dims: " + ", ".join(f"{d} {n}" for d, n in s["dims"].items()),
                 "  variables: " + ", ".join(s["variables"])]
        lines.append(f"  status: {s['status']}" + (f" — {s['message']}" if s["message"] else ""))
        return "\n".join(lines)
    c, t = s["counts"], s["timings"]
    lines = [f"{path}: {s['model']} {s['method']} (twolayer {s['version']}): {s['status']}"]
    if s["message"]:
        lines.append(f"  {s['message']}")
    if s["description"]:
        lines.append(f"  {s['description']}")
    if s["axes"]:
        lines.append(f"  sweep ({s['mode']}):")
        lines += [f"    {a} ({len(v)}): {_short(v)}" for a, v in s["axes"].items()]
    else:
        lines.append("  no sweep: one point")
    inner = {d: n for d, n in s["dims"].items() if d not in s["axes"] and d != "point"}
    if inner:
        lines.append("  per point: " + ", ".join(f"{d} {n}" for d, n in inner.items()))
    if s["seeds"] is not None:
        lines.append(f"  seeds: {s['seeds']} runs per point")
    lines.append(f"  points: {c.get('points')} (ok {c.get('ok')}, failed {c.get('failed')}); "
                 f"last run computed {c.get('computed')}, reused {c.get('cached')} from the store")
    for f in s["failed"]:
        where = ", ".join(f"{a}={v}" for a, v in f["point"].items()) or "the point"
        lines.append(f"    {where}: {f['status']}: {f['reason']}")
    if t and c.get("computed"):
        lines.append(f"  time: {t.get('wall_s', 0):.2f} s wall on {s['executor']}, "
                     f"{t.get('compute_s', 0):.2f} s computing "
                     f"({t.get('mean_point_s', 0):.3g} s per point)")
    elif t:
        lines.append(f"  time: {t.get('wall_s', 0):.2f} s wall, every point from the store")
    lines.append("  variables: " + ", ".join(v for v in s["variables"]
                                             if v not in ("status", "reason", "point_key")))
    return "\n".join(lines)
