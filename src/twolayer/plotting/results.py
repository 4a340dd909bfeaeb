"""Figures of a stored result (``twolayer plot``): the natural plot of what the result holds.

The plotted quantity is the one-step test error E(y − f(x))² (``test_error``; simulations:
``test_error_mean`` ± ``test_error_std`` over seeds) or the SGD excess risk ½ E(ŷ − y*)²
(``risk``; simulations: ``risk_mean`` with a ±1 std band). Its *curve axis* is α = n/d for the
one-step model and the time t = ν γ / (p d) for SGD. The *parameters* of a result are its other
axes that take more than one value: the sweep axes, and the ridge penalty λ of a one-step result
(a list inside each point). A swept ``seed`` (with ``seeds = 1``) is averaged over (mean ± std,
ddof = 1), never an axis; the axes of a zip sweep count as one parameter whose points are
labelled by the tuple of their values.

Which figure (``kind="auto"``):

1. The horizontal axis ``x`` is the curve axis, unless ``x=`` names a parameter; then every run
   is taken at the end of its curve axis (the largest α, the final time). A result whose curve
   axis has a single value uses its first parameter as ``x``.
2. The parameters other than ``x`` tell the curves apart:

   - none or one: **curves** in one panel, one per value, named in the legend;
   - two or more: **panels**, one per value of the parameter with the fewest values (the later
     one on a tie; never η̃, so that the random-features baseline is in every panel), a curve
     per value (or tuple of values) of the others, if that makes at most ``MAX_PANELS`` panels
     of at most ``MAX_PANEL_CURVES`` curves; otherwise, for exactly two parameters on a
     product grid with ``x`` the curve axis, a **heatmap** of the value at the end of the curve
     axis over the two (colour bar; logarithmic for SGD risks); otherwise **curves**, one per
     combination, labelled by the tuple of values.

   A result whose curve axis has a single value and whose two parameters form a product grid
   is a heatmap. ``kind=`` forces ``"curves"``, ``"panels"`` (two parameters besides ``x``) or
   ``"heatmap"`` (two parameters on a product grid; ``x`` picks the horizontal one).
Panels share their axes and one legend; what failed in a panel is written in it.

What is never drawn as a value: an α where the fixed point did not converge, a non-finite
simulated error, SGD times at or after a run diverged (simulations: from the first diverged
seed) or after the integration stopped. These samples are NaN in the plotted data (gaps in a
line, blank hatched heatmap cells) and the legend says what happened ("diverged at t = 1.7",
"not converged at 3 of 15 α"). A point whose computation raised has no data; it keeps a legend
entry ("error: no data"). One-step curves with η̃ = 0 are the random-features baseline: dashed,
labelled "RF (η̃ = 0)".

matplotlib is imported inside the drawing functions (``twolayer --help`` stays fast); figures are
:class:`matplotlib.figure.Figure` objects built without pyplot (no global state).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from twolayer.errors import ParameterError

__all__ = ["KINDS", "MAX_PANELS", "MAX_PANEL_CURVES", "FigurePlan", "figure_paths",
           "figure_plan", "plot_file", "plot_result", "save_figure"]

KINDS = ("auto", "curves", "panels", "heatmap")
MAX_PANELS = 6
MAX_PANEL_CURVES = 8
ANNOTATE_CELLS = 64  # heatmaps with at most this many cells print each cell's value
DPI = 150
MARK = "twolayer"  # in the PNG 'Software' and PDF 'Creator' metadata of the figures we write

_CURVE_AXIS = {"onestep": "alpha", "sgd": "t"}
_QUANTITY = {"onestep": ("test_error", "test error  E(y − f(x))²"),
             "sgd": ("risk", "excess risk  ½ E(ŷ − y*)²")}
_SYMBOL = {"alpha": "α", "alpha0": "α₀", "eta": "η̃", "lam": "λ", "noise": "Δ", "beta": "β",
           "gamma": "γ", "t": "t", "t_max": "t_max", "init_scale": "init scale",
           "student": "σ", "teacher": "σ⋆"}
_AXIS_LABEL = {
    "alpha": "α = n / d   (readout samples per dimension)",
    "alpha0": "α₀ = n₀ / d   (step samples per dimension)",
    "eta": "η̃   (learning rate of the giant step)",
    "lam": "λ   (ridge penalty of the readout)",
    "noise": "Δ   (label noise variance)",
    "beta": "β = p / d   (width ratio)",
    "d": "d   (input dimension)",
    "p": "p   (student width)",
    "k": "k   (teacher width)",
    "gamma": "γ   (SGD learning rate)",
    "t": "t = ν γ / (p d)   (SGD steps ν, rescaled)",
    "t_max": "t_max   (rescaled time of the run)",
    "init_scale": "scale of the initial weights",
    "student": "student activation σ",
    "teacher": "teacher activation σ⋆",
}
_METHOD_NAME = {("onestep", "theory"): "one giant step + ridge readout: sRF theory",
                ("onestep", "simulate"): "one giant step + ridge readout: simulation",
                ("sgd", "ode"): "one-pass SGD: overlap ODEs",
                ("sgd", "simulate"): "one-pass SGD: simulation"}
_SINGLE = {"theory": "sRF theory", "simulate": "simulation", "ode": "ODE"}
_NEEDS = {("onestep", "theory"): ("test_error", "converged"),
          ("onestep", "simulate"): ("test_error", "test_error_mean", "test_error_std"),
          ("sgd", "ode"): ("risk",),
          ("sgd", "simulate"): ("risk", "risk_mean", "risk_std")}


# --------------------------------------------------------------------------- the data, long form
@dataclass
class _Data:
    """A result as one row per plotted sample: its axis values, y, err, valid, point."""

    model: str
    method: str
    params: dict[str, Any]
    curve_axis: str
    axes: list[str]  # the axis columns of ``rows``: sweep axes in file order, then inner axes
    zip_axes: list[str]  # the sweep axes along a zip sweep's ``point`` dimension
    sweep_axes: list[str]
    rows: pd.DataFrame  # axes…, y, err, valid, point
    points: pd.DataFrame  # per point (index = flat sweep index): status, reason, stop, ndiv, runs
    seeds: int | None  # runs behind each simulated value
    description: str


def _json(text, default):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _read(ds: xr.Dataset) -> _Data:
    params = _json(ds.attrs.get("params"), {})
    params = params if isinstance(params, dict) else {}
    model = ds.attrs.get("model", params.get("model"))
    method = ds.attrs.get("method", params.get("method"))
    if (model, method) not in _NEEDS:
        raise ParameterError("not a twolayer result: the file has no model and method "
                             "attributes (write one with `twolayer run` or a command's --out)")
    merged = "experiment_key" in ds.attrs
    if not merged:  # a single result written by `twolayer onestep|sgd … --out`
        from twolayer.experiments.worker import _assess

        missing = [v for v in _NEEDS[(model, method)] if v not in ds.variables]
        if missing:
            raise ParameterError(f"not a complete twolayer {model} {method} result: no "
                                 f"{missing[0]!r} variable")
        status, reason = _assess(model, method, ds, [])
        ds = ds.assign(status=((), status), reason=((), reason))
        if method == "ode":
            ds = ds.assign(t_stop=((), float(ds.attrs.get("t_stop", np.inf))))
    sweep_axes = _json(ds.attrs.get("sweep_axes"), []) if merged else []
    zipped = merged and ds.attrs.get("sweep_mode") == "zip" and bool(sweep_axes)
    sweep_dims = ["point"] if zipped else list(sweep_axes)
    if "status" not in ds.variables or any(d not in ds.dims for d in sweep_dims):
        raise ParameterError("not a twolayer result: no per-point 'status' on the sweep axes")
    missing = [v for v in _NEEDS[(model, method)] if v not in ds.variables]
    if missing:
        if (ds["status"].values == "ok").any():
            raise ParameterError(f"not a complete twolayer {model} {method} result: no "
                                 f"{missing[0]!r} variable")
        first = np.asarray(ds["reason"].values).ravel()[0]
        raise ParameterError(f"nothing to plot: every point of this result failed ({first})")

    average = method == "simulate" and "seed" in sweep_axes and not zipped
    status = ds["status"]
    reason = ds["reason"]
    stop = xr.full_like(status, np.nan, dtype=float)
    ndiv = xr.full_like(status, 0, dtype=float)
    t = None
    if model == "onestep":
        if method == "theory":
            y, err = ds["test_error"], None
            valid = ds["converged"].astype(bool) & np.isfinite(y)
        elif average:
            y, err = ds["test_error"], None
            valid = np.isfinite(y)
        else:
            y, err = ds["test_error_mean"], ds["test_error_std"]
            valid = np.isfinite(y)
    else:
        if method == "ode" or average:
            y, err = ds["risk"], None
        else:
            y, err = ds["risk_mean"], ds["risk_std"]
        t = ds["t"] if "t" in ds.indexes else ds["t_values"]
        valid = np.isfinite(y) & np.isfinite(t)
        if method == "ode":
            stop = ds["t_stop"].where(status != "ok")
            valid = valid & ~(t > ds["t_stop"])
        else:
            at = ds["diverged_at"]
            first = at.min("seed") if "seed" in at.dims and not average else at
            valid = valid & ~(t >= first)
            stop = first
            ndiv = (np.isfinite(at).sum("seed") if "seed" in at.dims and not average
                    else np.isfinite(at).astype(float))
    runs = None
    if method == "simulate":
        runs = ds.sizes["seed"] if "seed" in ds.dims else int(params.get("seeds", 1))
    if average:
        yv = y.where(valid)
        y = yv.mean("seed", skipna=False)
        err = (yv.std("seed", ddof=1, skipna=False) if ds.sizes["seed"] > 1
               else xr.zeros_like(y))
        valid = valid.all("seed")
        status, reason = _worst(status, reason, "seed")
        stop = stop.min("seed")
        ndiv = ndiv.sum("seed")
        if t is not None and "seed" in t.dims:
            t = t.isel(seed=0, drop=True)
        sweep_dims.remove("seed")
        sweep_axes = [a for a in sweep_axes if a != "seed"]

    y = y.transpose(*sweep_dims, ...)
    shape = tuple(y.sizes[d] for d in sweep_dims)
    npts = math.prod(shape)
    inner = [d for d in ("lam", "alpha") if d in y.dims and d not in sweep_axes]
    if t is not None:
        inner.append("t")
    columns = {}
    for a in sweep_axes + inner:
        src = t if a == "t" else ds[a]
        columns[a] = _flat(src, y)
    point = xr.DataArray(np.arange(npts).reshape(shape), dims=sweep_dims)
    columns["point"] = _flat(point, y)
    columns["y"] = _flat(y, y).astype(float)
    columns["err"] = (np.full(y.size, np.nan) if err is None else _flat(err, y).astype(float))
    columns["valid"] = _flat(valid, y).astype(bool)
    rows = pd.DataFrame(columns)
    points = pd.DataFrame({
        "status": [str(s) for s in status.transpose(*sweep_dims).values.ravel()],
        "reason": [str(s) for s in reason.transpose(*sweep_dims).values.ravel()],
        "stop": stop.transpose(*sweep_dims).values.ravel().astype(float),
        "ndiv": ndiv.transpose(*sweep_dims).values.ravel().astype(float),
    })
    seeds = ds.sizes["seed"] if average else runs
    return _Data(model, method, params, _CURVE_AXIS[model], sweep_axes + inner,
                 list(sweep_axes) if zipped else [], sweep_axes, rows, points, seeds,
                 str(ds.attrs.get("description", "")))


def _flat(da: xr.DataArray, like: xr.DataArray) -> np.ndarray:
    """``da`` broadcast against ``like`` (whose dimensions hold all of da's), C order."""
    da = xr.DataArray(np.asarray(da.values), dims=da.dims)
    return da.broadcast_like(xr.DataArray(np.empty(like.shape), dims=like.dims)).transpose(
        *like.dims).values.ravel()


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


# --------------------------------------------------------------------------- which figure
@dataclass(frozen=True)
class FigurePlan:
    """What :func:`plot_result` draws (see the module docstring for the rule).

    ``kind``: "curves", "panels" or "heatmap"; ``x``: the horizontal axis; ``families``: the
    groups of axes whose values tell curves apart (a zip sweep's axes form one group);
    ``panel_axes``: the group with one panel per value (panels); ``heat_axes``: (horizontal,
    vertical) (heatmap); ``reduced``: each run is taken at the end of its ``curve_axis``, whose
    value there is ``at`` (None when it differs between runs).
    """

    model: str
    method: str
    kind: str
    x: str
    quantity: str
    curve_axis: str
    reduced: bool
    families: tuple[tuple[str, ...], ...] = ()
    panel_axes: tuple[str, ...] | None = None
    heat_axes: tuple[str, str] | None = None
    at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": self.x, "model": self.model, "method": self.method,
                "quantity": self.quantity, "curve_axis": self.curve_axis,
                "reduced": self.reduced, "families": [list(f) for f in self.families],
                "panel_axes": list(self.panel_axes) if self.panel_axes else None,
                "heat_axes": list(self.heat_axes) if self.heat_axes else None, "at": self.at}


def _nunique(rows: pd.DataFrame, cols) -> int:
    cols = list(cols)
    return len(rows[cols].drop_duplicates()) if cols else 1


def _plan(data: _Data, x: str | None, kind: str) -> FigurePlan:
    if kind not in KINDS:
        raise ParameterError(f"unknown figure kind {kind!r}; choose one of {', '.join(KINDS)}")
    rows, c = data.rows, data.curve_axis
    if x is not None and x not in data.axes:
        raise ParameterError(f"unknown axis {x!r} for x; the axes of this result are "
                             f"{', '.join(data.axes)}")
    params = [a for a in data.axes if a != c and _nunique(rows, [a]) > 1]

    def groups(names):
        zipped = tuple(a for a in names if a in data.zip_axes)
        return ([zipped] if zipped else []) + [(a,) for a in names if a not in data.zip_axes]

    product = [f[0] for f in groups(params) if len(f) == 1]
    x_given = x
    if x is None:
        x = c
        if _nunique(rows, [c]) <= 1 and params:
            if kind in ("auto", "heatmap") and len(params) == 2 and len(product) == 2:
                kind = "heatmap"
            else:
                x = params[0]
    quantity = _QUANTITY[data.model][0]
    if kind == "heatmap":
        if len(params) != 2 or len(product) != 2:
            raise ParameterError(
                "a heatmap needs exactly two parameters varying on a product grid besides "
                f"{_SYMBOL[c]}; this result varies over "
                f"{', '.join(params) if params else 'none'}")
        h = x_given if x_given in params else params[0]
        v = params[1] if h == params[0] else params[0]
        return FigurePlan(data.model, data.method, "heatmap", h, quantity, c, True,
                          ((h,), (v,)), None, (h, v), _at(data, c))
    families = groups([a for a in params if a != x])
    panel = None
    if kind in ("auto", "panels") and len(families) >= 2:
        # panels: the parameter with the fewest values (the later one on a tie), never η̃
        # (the RF baseline stays in every panel)
        panel_f = min((f for f in families if "eta" not in f),
                      key=lambda f: (len(f) > 1, _nunique(rows, f), -families.index(f)))
        curve_fs = [f for f in families if f != panel_f]
        small = (_nunique(rows, panel_f) <= MAX_PANELS
                 and _nunique(rows, [a for f in curve_fs for a in f]) <= MAX_PANEL_CURVES)
        if kind == "panels" or small:
            kind, panel, families = "panels", panel_f, [*curve_fs, panel_f]
        elif len(families) == 2 and x == c and all(len(f) == 1 for f in families):
            h, v = families[0][0], families[1][0]
            return FigurePlan(data.model, data.method, "heatmap", h, quantity, c, True,
                              tuple(families), None, (h, v), _at(data, c))
    elif kind == "panels":
        raise ParameterError(f"panels need two parameters besides x = {x}; this result has "
                             f"{len(families)} ({', '.join('/'.join(f) for f in families)})")
    if kind != "panels":
        kind = "curves"
    reduced = x != c
    return FigurePlan(data.model, data.method, kind, x, quantity, c, reduced, tuple(families),
                      panel, None, _at(data, c) if reduced else None)


def _at(data: _Data, c: str) -> float | None:
    ends = _reduce(data, c)[c].unique()
    return float(ends[0]) if len(ends) == 1 else None


def _reduce(data: _Data, c: str) -> pd.DataFrame:
    """One row per run: the sample at the largest value of the curve axis ``c``."""
    rows = data.rows[data.rows[c].notna()]
    keys = [a for a in data.axes if a != c]
    if c not in data.sweep_axes:
        keys.append("point")
    if not keys:
        return rows.loc[[rows[c].idxmax()]]
    return rows.loc[rows.groupby(keys, sort=False, dropna=False)[c].idxmax().values]


def figure_plan(ds: xr.Dataset, *, x: str | None = None, kind: str = "auto") -> FigurePlan:
    """Which figure :func:`plot_result` draws for ``ds`` (no matplotlib involved)."""
    return _plan(_read(ds), x, kind)


# --------------------------------------------------------------------------- text
def _fmt(v) -> str:
    """A parameter value for a label: 4 significant digits, ∞ for inf (also d = "inf")."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v:.4g}"
    if v is None:
        return "–"
    return "∞" if v == "inf" else str(v)


def _sym(a: str) -> str:
    return _SYMBOL.get(a, a)


def _label(key: dict) -> str:
    return ", ".join(f"{_sym(a)} = {_fmt(v)}" for a, v in key.items())


def _title(data: _Data, plan: FigurePlan, width: int = 90) -> str:
    shown = {plan.x, *(a for f in plan.families for a in f)}
    if plan.heat_axes:
        shown |= set(plan.heat_axes)

    def value(name):
        if name in data.rows.columns:
            vals = data.rows[name].unique()
            return vals[0] if len(vals) == 1 else None
        return data.params.get(name)

    if data.model == "onestep":
        names = ["alpha0", "eta", "lam", "noise", "beta", "d"]
        if data.method == "simulate":
            names.append("p")
    else:
        names = ["p", "k", "gamma", "noise", "d", "init_scale"]
    parts = []
    for who in ("student", "teacher"):
        if who not in shown and value(who) is not None:
            parts.append(f"{_sym(who)} = {value(who)}")
    for n in names:
        v = value(n)
        if n in shown or v is None or isinstance(v, list):
            continue
        if (n, v) in (("noise", 0.0), ("beta", 1.0), ("init_scale", 1.0)):
            continue
        parts.append(f"{_sym(n)} = {_fmt(v)}")
    if data.model == "sgd" and data.params.get("spherical"):
        parts.append("spherical")
    if data.model == "sgd" and data.method == "ode" and data.params.get("variance") is False:
        parts.append("no SGD variance term")
    if data.seeds is not None:
        parts.append(f"{data.seeds} seed{'s' if data.seeds != 1 else ''} (mean ± std)")
    head = _METHOD_NAME[(data.model, data.method)]
    lines = [f"{head} —"]
    for i, part in enumerate(parts):  # wrap between parts, never inside "d = 200"
        part += "," if i < len(parts) - 1 else ""
        if len(lines[-1]) + 1 + len(part) > width:
            lines.append(part)
        else:
            lines[-1] += " " + part
    if data.description:
        lines = textwrap.wrap(data.description, width) + lines
    return "\n".join(lines)


def _y_label(data: _Data, plan: FigurePlan) -> str:
    label = _QUANTITY[data.model][1]
    if plan.reduced:
        label += "\n" + _at_text(data, plan)
    return label


def _at_text(data: _Data, plan: FigurePlan) -> str:
    c = plan.curve_axis
    if plan.at is not None:
        return f"at {_sym(c)} = {_fmt(plan.at)}"
    return "at the end of each run" if c == "t" else "at the largest α of each point"


# --------------------------------------------------------------------------- drawing
def plot_result(ds: xr.Dataset, *, x: str | None = None, kind: str = "auto"):
    """The natural figure of a result (see the module docstring for the rule).

    Parameters
    ----------
    ds : xarray.Dataset
        A merged sweep result (``twolayer run``; :func:`twolayer.io.load_netcdf` reads it back)
        or a single result written by ``twolayer onestep|sgd … --out``.
    x : str, optional
        The horizontal axis: by default α (one-step) or t (SGD); a parameter's name draws each
        run's value at the end of its curve axis against that parameter.
    kind : {"auto", "curves", "panels", "heatmap"}
        Force a kind of figure.

    Returns
    -------
    matplotlib.figure.Figure
        Not registered with pyplot. Each drawn curve's data line has the gid
        ``"curve:<legend label without status>"`` (panels: ``"… | <panel title>"``); the
        heatmap's mesh has the gid ``"heatmap"`` and its array holds the cell values (NaN
        where there is none). ``fig.twolayer_plan`` is the :class:`FigurePlan`.

    Raises
    ------
    ParameterError
        Not a twolayer result, an unknown axis for ``x``, an unknown or impossible ``kind``.
    """
    data = _read(ds)
    plan = _plan(data, x, kind)
    if plan.kind == "heatmap":
        fig = _heatmap(data, plan)
    else:
        fig = _curves(data, plan)
    fig.twolayer_plan = plan
    return fig


def _new_figure(size):
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained")


def _is_log_like(values) -> bool:
    """Positive values spanning a decade or more in a geometric, not arithmetic, progression
    (a ``logspace`` sweep): steps of log v equal within 10%, steps of v not."""
    try:
        v = np.unique(np.asarray(values, dtype=float))
    except (TypeError, ValueError):
        return False
    v = v[np.isfinite(v)]
    if v.size < 3 or (v <= 0).any() or v[-1] < 10 * v[0]:
        return False
    dl, dv = np.diff(np.log(v)), np.diff(v)
    return np.std(dl) < 0.1 * np.mean(dl) and np.std(dv) > 0.1 * np.mean(dv)


def _numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _curve_colours(rows: pd.DataFrame, cols: list[str], keys: list[tuple],
                   rf: dict[tuple, bool]) -> dict[tuple, Any]:
    """Colour of each curve key (a missing key is drawn black).

    One RF baseline is black. When the curves are η̃ ∈ {0, η̃₁} times other values, an RF
    curve shares its colour with the η̃₁ curve of the same other values (dashed vs solid).
    One numeric parameter with 6 or more values gets a sequential scale (viridis), as do more
    than 10 colours; otherwise the tab10 cycle.
    """
    import matplotlib

    if sum(rf.values()) == 1:
        keys = [k for k in keys if not rf[k]]
    etas = {k[cols.index("eta")] for k in keys} if "eta" in cols else set()
    if len(cols) > 1 and len(etas) == 2 and 0.0 in etas:
        i = cols.index("eta")
        shade = {k: k[:i] + k[i + 1:] for k in keys}
    else:
        shade = {k: k for k in keys}
    distinct = list(dict.fromkeys(shade.values()))
    n = len(distinct)
    ordered = len(cols) == 1 and _numeric(rows[cols[0]]) and n >= 6
    if ordered or n > 10:
        cmap = matplotlib.colormaps["viridis"]
        palette = [cmap(0.9 * i / max(n - 1, 1)) for i in range(n)]
    else:
        palette = [matplotlib.colormaps["tab10"](i) for i in range(n)]
    colour = dict(zip(distinct, palette, strict=True))
    return {k: colour[shade[k]] for k in keys}


def _keys(rows: pd.DataFrame, cols: list[str]) -> list[tuple]:
    """The distinct value tuples of ``cols`` in order of appearance (sorted if one number)."""
    if not cols:
        return [()]
    keys = list(dict.fromkeys(map(tuple, rows[cols].itertuples(index=False))))
    if len(cols) == 1 and _numeric(rows[cols[0]]):
        keys.sort(key=lambda k: k[0])
    return keys


def _select(rows: pd.DataFrame, cols, key) -> pd.DataFrame:
    mask = np.ones(len(rows), dtype=bool)
    for col, v in zip(cols, key, strict=True):
        mask &= (rows[col] == v).values
    return rows[mask]


def _eta(data: _Data, g: pd.DataFrame) -> float | None:
    if "eta" in g.columns:
        vals = g["eta"].unique()
        return float(vals[0]) if len(vals) == 1 else None
    return data.params.get("eta")


def _failure(data: _Data, plan: FigurePlan, g: pd.DataFrame) -> str:
    """What went wrong along one curve (empty if nothing)."""
    pts = data.points.loc[g["point"].unique()]
    bad = pts[pts["status"] != "ok"]
    invalid = int((~g["valid"]).sum())
    if bad.empty and invalid == 0:
        return ""
    if data.model == "sgd" and plan.x == "t" and len(pts) == 1 and not bad.empty:
        p = bad.iloc[0]
        if p["status"] == "error":
            return "error: no data"
        when = f" at t = {p['stop']:.3g}" if np.isfinite(p["stop"]) else ""
        if p["status"] == "diverged" and data.method == "simulate":
            return f"{int(p['ndiv'])} of {data.seeds} runs diverged (first{when})"
        if p["status"] == "diverged":
            return f"diverged{when}"
        if p["status"] == "failed":
            return f"integration failed{when}"
        return p["status"].replace("_", " ") + when
    what = "/".join(sorted(s.replace("_", " ") for s in set(bad["status"]))) or "invalid"
    if invalid == len(g):
        return f"{what}: no data"
    if invalid:
        where = g.loc[~g["valid"], plan.x].tolist()
        if invalid <= 3:
            return f"{what} at {_sym(plan.x)} = {', '.join(map(_fmt, where))} (left out)"
        return f"{what} at {invalid} of {len(g)} {_sym(plan.x)} (left out)"
    return ""


def _curves(data: _Data, plan: FigurePlan):
    rows = _reduce(data, plan.curve_axis) if plan.reduced else data.rows
    x = plan.x
    sgd_time = data.model == "sgd" and x == "t"
    if sgd_time:
        rows = rows[rows["t"] > 0]  # log axis
    curve_cols = [a for f in plan.families if f != plan.panel_axes for a in f]
    panel_cols = list(plan.panel_axes) if plan.kind == "panels" else []
    curve_keys = _keys(rows, curve_cols)
    panel_keys = _keys(rows, panel_cols)
    rf = {k: data.model == "onestep" and x != "eta"
          and _eta(data, _select(rows, curve_cols, k)) == 0.0 for k in curve_keys}
    colours = _curve_colours(rows, curve_cols, curve_keys, rf)

    n = len(panel_keys)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    width = 5.4 if n == 1 else 3.3 * ncols + 1.6
    fig = _new_figure((width, 3.9 if n == 1 else 2.8 * nrows + 0.9))
    axs = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    for ax in axs[n:]:
        ax.set_visible(False)
    xlog = sgd_time or (x != "alpha" and _numeric(rows[x]) and _is_log_like(rows[x]))
    ylog = data.model == "sgd"
    legend: dict[str, Any] = {}
    for ax, pkey in zip(axs, panel_keys, strict=False):
        sub = _select(rows, panel_cols, pkey)
        ptitle = _label(dict(zip(panel_cols, pkey, strict=True)))
        notes = []
        for ckey in curve_keys:
            g = _select(sub, curve_cols, ckey)
            if g.empty:
                continue
            name = _label(dict(zip(curve_cols, ckey, strict=True)))
            if rf[ckey]:
                name = "RF (η̃ = 0)" if curve_cols in ([], ["eta"]) else f"{name} (RF)"
            elif not name:
                name = _SINGLE[data.method]
            fail = _failure(data, plan, g)
            gid = f"curve:{name}" + (f" | {ptitle}" if ptitle else "")
            handle = _draw(ax, data, g, x, colours.get(ckey, "k"), rf[ckey], bool(fail), gid,
                           sgd_time)
            if plan.kind == "panels":
                legend.setdefault(name, handle)
                if fail:
                    notes.append(f"{name}: {fail}")
            else:
                legend[f"{name} — {fail}" if fail else name] = handle
        if ptitle:
            ax.set_title(ptitle, fontsize=9)
        if notes:
            ax.text(0.02, 0.02, "\n".join(notes), transform=ax.transAxes, fontsize=6.5,
                    va="bottom", color="0.2",
                    bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1.5})
        ax.grid(alpha=0.3, which="both" if ylog else "major")
    _scales(axs[:n], rows, x, xlog, ylog)
    for ax in axs[:n]:
        if ax.get_subplotspec().is_last_row() or n == 1:
            ax.set_xlabel(_AXIS_LABEL.get(x, x), fontsize=8.5)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(_y_label(data, plan), fontsize=8.5)
        ax.tick_params(which="both", labelsize=8)
        ax.xaxis.set_tick_params(labelbottom=True)
    fig.suptitle(_title(data, plan, int(fig.get_figwidth() * 15.5)), fontsize=8)
    handles, labels = list(legend.values()), list(legend)
    fig.twolayer_labels = labels
    if plan.kind == "panels" or len(labels) > 8:
        fig.legend(handles, labels, loc="outside right center", fontsize=7, frameon=False,
                   ncols=1 if len(labels) <= 20 else 2)
    elif handles:
        axs[0].legend(handles, labels, fontsize=7, frameon=False)
    return fig


def _draw(ax, data: _Data, g: pd.DataFrame, x: str, colour, rf: bool, failed: bool, gid: str,
          sgd_time: bool):
    """One curve; returns its legend handle. Invalid samples are NaN in the line data."""
    if _numeric(g[x]):
        g = g.sort_values(x, kind="stable")
    xs = g[x].to_numpy()
    ys = np.where(g["valid"], g["y"], np.nan)
    es = np.where(g["valid"], g["err"], np.nan)
    nodata = not np.isfinite(ys).any()
    if nodata:
        colour = "0.6"
    ls = ":" if (failed and data.model == "sgd") or nodata else ("--" if rf else "-")
    if not _numeric(g[x]):
        ls = "none"  # categories (activation names): no line between them
    lw = 1.3 if rf else 1.5
    sim = data.method == "simulate"
    if sim and not sgd_time:
        cont = ax.errorbar(xs, ys, yerr=es, fmt="o", ls=ls, lw=1, ms=3.5, capsize=2,
                           color=colour, mfc="white" if rf else colour)
        line = cont.lines[0]
        handle = cont
    else:
        few = np.isfinite(ys).sum() < 8
        (line,) = ax.plot(xs, ys, ls=ls, lw=lw, color=colour,
                          marker="o" if (few or ls == "none") and not sgd_time else None,
                          ms=4 if ls == "none" else 3)
        handle = line
        if sim:  # SGD simulation: ±1 std band
            lo = np.maximum(ys - es, ys * 1e-3)
            ax.fill_between(xs, lo, ys + es, color=colour, alpha=0.25, lw=0)
        if sgd_time and failed and not nodata:
            last = np.flatnonzero(np.isfinite(ys))[-1]
            ax.plot([xs[last]], [ys[last]], "x", color=colour, ms=7, mew=1.5)
    line.set_gid(gid)
    return handle


def _scales(axs, rows, x, xlog, ylog) -> None:
    good = rows[rows["valid"]]
    if xlog:
        for ax in axs:
            ax.set_xscale("log")
    if ylog and (good["y"] > 0).any():
        for ax in axs:
            ax.set_yscale("log")
    if not _numeric(rows[x]):
        return
    xv = rows[x].to_numpy(dtype=float)
    xv = xv[np.isfinite(xv) & ((xv > 0) if xlog else True)]
    if xv.size and xv.min() == xv.max():  # one point: give it some room
        lim = (xv[0] / 2, xv[0] * 2) if xlog else (xv[0] - 1, xv[0] + 1)
        for ax in axs:
            ax.set_xlim(*lim)


def _heatmap(data: _Data, plan: FigurePlan):
    import matplotlib
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.patches import Patch, Rectangle

    h, v = plan.heat_axes
    rows = _reduce(data, plan.curve_axis)
    hk = [k[0] for k in _keys(rows, [h])]
    vk = [k[0] for k in _keys(rows, [v])]
    z = np.full((len(vk), len(hk)), np.nan)
    what = np.full(z.shape, "no point", dtype=object)
    for r in rows.itertuples(index=False):
        i, j = vk.index(getattr(r, v)), hk.index(getattr(r, h))
        if not math.isnan(z[i, j]) or what[i, j] != "no point":
            raise ParameterError(f"two runs fall in the heatmap cell {h} = {_fmt(hk[j])}, "
                                 f"{v} = {_fmt(vk[i])}; fix the other parameters")
        status = data.points.loc[r.point, "status"]
        z[i, j] = r.y if r.valid else np.nan
        what[i, j] = status if status != "ok" or r.valid else "invalid"
    finite = z[np.isfinite(z)]
    log = data.model == "sgd" and finite.size and (finite > 0).all()
    if log:
        norm = LogNorm(vmin=finite.min(), vmax=finite.max())
    else:
        norm = Normalize(*(finite.min(), finite.max()) if finite.size else (0, 1))
    nh, nv = len(hk), len(vk)
    fig = _new_figure((min(2.6 + 0.5 * nh, 9.0) + 1.2, min(2.0 + 0.4 * nv, 7.0) + 0.9))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["viridis"]
    mesh = ax.pcolormesh(np.arange(nh + 1) - 0.5, np.arange(nv + 1) - 0.5,
                         np.ma.masked_invalid(z), cmap=cmap, norm=norm, shading="flat")
    mesh.set_gid("heatmap")
    ax.set_xticks(range(nh), [_fmt(a) for a in hk], fontsize=8,
                  rotation=45 if nh > 8 else 0)
    ax.set_yticks(range(nv), [_fmt(a) for a in vk], fontsize=8)
    ax.set_xlim(-0.5, nh - 0.5)
    ax.set_ylim(-0.5, nv - 0.5)
    ax.set_xlabel(_AXIS_LABEL.get(h, h), fontsize=8.5)
    ax.set_ylabel(_AXIS_LABEL.get(v, v), fontsize=8.5)
    cbar = fig.colorbar(mesh, ax=ax)
    cbar.set_label(_y_label(data, plan).replace("\n", " "), fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    missing = set()
    for i, j in zip(*np.nonzero(~np.isfinite(z)), strict=True):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="none", hatch="///",
                               edgecolor="0.55", lw=0.5))
        missing.add(str(what[i, j]).replace("_", " "))
    if nh * nv <= ANNOTATE_CELLS:
        for i in range(nv):
            for j in range(nh):
                if np.isfinite(z[i, j]):
                    lum = np.dot(cmap(norm(z[i, j]))[:3], (0.299, 0.587, 0.114))
                    ax.text(j, i, f"{z[i, j]:.3g}", ha="center", va="center", fontsize=7,
                            color="k" if lum > 0.5 else "w")
    if missing:
        ax.legend(handles=[Patch(facecolor="white", edgecolor="0.55", hatch="///",
                                 label="no value: " + ", ".join(sorted(missing)))],
                  loc="upper center", bbox_to_anchor=(0.5, -0.16 if nh <= 8 else -0.24),
                  fontsize=7, frameon=False)
    fig.suptitle(_title(data, plan, int(fig.get_figwidth() * 15.5)), fontsize=8)
    fig.twolayer_labels = [
        f"{_sym(h)} = {_fmt(a)}, {_sym(v)} = {_fmt(b)}"
        + ("" if np.isfinite(z[i, j]) else f": no value ({what[i, j].replace('_', ' ')})")
        for i, b in enumerate(vk) for j, a in enumerate(hk)]
    return fig


# --------------------------------------------------------------------------- files
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
    """A PNG or PDF that this module wrote (its metadata names twolayer)."""
    try:
        if path.stat().st_size > 200_000_000:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    magic = data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"%PDF-")
    return magic and MARK.encode() in data


def save_figure(fig, png: str | os.PathLike, pdf: str | os.PathLike | None = None, *,
                overwrite: bool = False) -> list[Path]:
    """Write ``fig`` as PNG (150 dpi) and PDF, each atomically (temporary name, then rename).

    An existing file is replaced only if it is a figure written here (its metadata names
    twolayer) or with ``overwrite=True``; otherwise ParameterError, before anything is written.
    """
    import twolayer

    targets = [Path(png)] + ([Path(pdf)] if pdf is not None else [])
    for p in targets:
        parent = p.parent if str(p.parent) else Path(".")
        if p.is_dir():
            raise ParameterError(f"cannot write the figure {str(p)!r}: it is a directory")
        if not parent.is_dir():
            raise ParameterError(f"cannot write {str(p)!r}: directory {str(parent)!r} does "
                                 "not exist")
        if p.exists() and not overwrite and not _ours(p):
            raise ParameterError(f"{str(p)!r} exists and is not a figure written by twolayer; "
                                 "pass --overwrite to replace it")
    stamp = f"{MARK} {twolayer.__version__} (twolayer plot)"
    for p in targets:
        fmt = p.suffix.lower().lstrip(".")
        meta = {"Software": stamp} if fmt == "png" else {"Creator": stamp}
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent or ".")
        os.close(fd)
        try:
            fig.savefig(tmp, format=fmt, dpi=DPI, metadata=meta)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return targets


def plot_file(result: str | os.PathLike, out: str | os.PathLike | None = None, *,
              x: str | None = None, kind: str = "auto", overwrite: bool = False
              ) -> dict[str, Any]:
    """Read a result file, draw its figure, write PNG and PDF; return what was done.

    The returned dict has ``figures`` ([png, pdf]), ``result`` and the :class:`FigurePlan`'s
    fields (``kind``, ``x`` …) with ``labels`` (the legend entries, with what went wrong; a
    heatmap: its cells).
    """
    from twolayer.io import load_netcdf

    png, pdf = figure_paths(result, out)  # a bad --out fails before any reading
    ds = load_netcdf(result)
    try:
        fig = plot_result(ds, x=x, kind=kind)
    except ParameterError as e:
        raise ParameterError(f"{str(result)!r}: {e}") from None
    written = save_figure(fig, png, pdf, overwrite=overwrite)
    return {"figures": [str(p) for p in written], "result": str(result),
            **fig.twolayer_plan.to_dict(), "labels": fig.twolayer_labels}
