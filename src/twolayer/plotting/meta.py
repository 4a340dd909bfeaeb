"""What a figure needs to know about a result besides its data: the one place that reads the
result's attributes (``params``, ``model``, ``method``, ``experiment_key``, ``sweep_axes``,
``sweep_mode``, ``description``, ``status``, ``t_stop``) and its per-point ``status`` and
``reason`` variables.

A result is either *single* (written by ``twolayer onestep|sgd … --out``, or returned by the
library's functions) or *merged* (a sweep written by ``twolayer run``: ``experiment_key`` in its
attributes, a per-point ``status`` and ``reason`` variable on the sweep axes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import xarray as xr


@dataclass(frozen=True)
class Meta:
    """The attributes of a result that figures use (absent ones: None, empty, defaults)."""

    model: str | None
    method: str | None
    params: dict[str, Any] = field(default_factory=dict)
    merged: bool = False  # a merged sweep (``twolayer run``), else a single result
    sweep_axes: tuple[str, ...] = ()  # merged: the swept parameters, in file order
    zipped: bool = False  # merged: a zip sweep (its axes run along one ``point`` dimension)
    description: str = ""
    status: str = "ok"  # a single ODE result: how its integration ended
    t_stop: float = math.inf  # a single ODE result: where its integration stopped

    def param(self, key: str, default: Any = "?") -> Any:
        return self.params.get(key, default)


def _json(text, default):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def meta(ds: xr.Dataset) -> Meta:
    """The :class:`Meta` of ``ds``, a result of the schema of :mod:`twolayer.results`
    (SchemaError, one line, otherwise)."""
    from twolayer.results import validate

    validate(ds)
    a = ds.attrs
    params = _json(a.get("params"), {})
    params = params if isinstance(params, dict) else {}
    merged = "experiment_key" in a
    axes = _json(a.get("sweep_axes"), []) if merged else []
    axes = tuple(str(x) for x in axes) if isinstance(axes, list) else ()
    try:
        t_stop = float(a.get("t_stop", math.inf))
    except (TypeError, ValueError):
        t_stop = math.inf
    return Meta(model=a.get("model", params.get("model")),
                method=a.get("method", params.get("method")),
                params=params, merged=merged, sweep_axes=axes,
                zipped=merged and a.get("sweep_mode") == "zip" and bool(axes),
                description=str(a.get("description", "")),
                status=str(a.get("status", "ok")), t_stop=t_stop)


def as_point(ds: xr.Dataset, m: Meta) -> xr.Dataset:
    """A single result with the per-point variables of a merged sweep: ``status`` and
    ``reason`` (the result's own status and message), and ``t_stop`` for the ODE."""
    ds = ds.assign(status=((), m.status), reason=((), str(ds.attrs.get("message", ""))))
    if m.method == "ode":
        ds = ds.assign(t_stop=((), m.t_stop))
    return ds


def outcomes(ds: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray] | None:
    """A merged result's per-point ``(status, reason)``; None if it has no ``status``."""
    if "status" not in ds.variables:
        return None
    reason = ds["reason"] if "reason" in ds.variables else xr.full_like(ds["status"], "")
    return ds["status"], reason


def failed_count(ds: xr.Dataset) -> int:
    """How many points of a merged result are not ok."""
    return int((ds["status"] != "ok").sum())


def point_status(ds: xr.Dataset) -> str:
    """How a result of one point ended: its ``status`` variable (merged) or attribute."""
    if "status" in ds.variables:
        return str(ds["status"].item())
    return meta(ds).status


def ok_mask(ds: xr.Dataset) -> xr.DataArray:
    """True where a merged result's point is ok (and, for the theory, its fixed point
    converged)."""
    good = ds["status"] == "ok"
    if "converged" in ds:
        good = good & ds["converged"].astype(bool)
    return good
