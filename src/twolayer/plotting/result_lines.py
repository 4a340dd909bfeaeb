"""A result's figure of kind "curves" or "panels": one line per curve key, one panel per value
of the panel parameter, one legend for all (the rule is in :mod:`twolayer.plotting.results`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from twolayer.plotting import labels, style
from twolayer.plotting.plan import FigurePlan, at_end
from twolayer.plotting.table import ResultTable, keys, numeric, select


def draw(data: ResultTable, plan: FigurePlan):
    """The Figure (``fig.twolayer_labels``: the legend entries, with what went wrong)."""
    rows = at_end(data, plan.curve_axis) if plan.reduced else data.rows
    x = plan.x
    sgd_time = data.model == "sgd" and x == "t"
    if sgd_time:
        rows = rows[rows["t"] > 0]  # log axis
    curve_cols = [a for f in plan.families if f != plan.panel_axes for a in f]
    panel_cols = list(plan.panel_axes) if plan.kind == "panels" else []
    curve_keys = keys(rows, curve_cols)
    panel_keys = keys(rows, panel_cols)
    rf = {k: data.model == "onestep" and x != "eta"
          and _eta(data, select(rows, curve_cols, k)) == 0.0 for k in curve_keys}
    colours = _curve_colours(rows, curve_cols, curve_keys, rf)

    n = len(panel_keys)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = style.new_figure(style.FIGSIZE if n == 1 else style.panels_figsize(ncols, nrows))
    axs = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    for ax in axs[n:]:
        ax.set_visible(False)
    xlog = sgd_time or (x != "alpha" and numeric(rows[x]) and _is_log_like(rows[x]))
    ylog = data.model == "sgd"
    legend: dict[str, Any] = {}
    for ax, pkey in zip(axs, panel_keys, strict=False):
        sub = select(rows, panel_cols, pkey)
        ptitle = labels.label(dict(zip(panel_cols, pkey, strict=True)))
        notes = []
        for ckey in curve_keys:
            g = select(sub, curve_cols, ckey)
            if g.empty:
                continue
            name = labels.label(dict(zip(curve_cols, ckey, strict=True)))
            if rf[ckey]:
                name = style.RF_LABEL if curve_cols in ([], ["eta"]) else f"{name} (RF)"
            elif not name:
                name = style.CURVE_NAME[data.method]
            fail = labels.failure(data, plan, g)
            gid = f"curve:{name}" + (f" | {ptitle}" if ptitle else "")
            handle = _draw(ax, data, g, x, colours.get(ckey, style.RF_COLOUR), rf[ckey],
                           bool(fail), gid, sgd_time)
            if plan.kind == "panels":
                legend.setdefault(name, handle)
                if fail:
                    notes.append(f"{name}: {fail}")
            else:
                legend[f"{name} — {fail}" if fail else name] = handle
        if notes:
            ax.text(0.02, 0.02, "\n".join(notes), transform=ax.transAxes,
                    fontsize=style.NOTE_SIZE, va="bottom", color="0.2",
                    bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1.5})
        style.decorate(ax, title=ptitle, log_grid=ylog)
    _scales(axs[:n], rows, x, xlog, ylog)
    for ax in axs[:n]:
        spec = ax.get_subplotspec()
        style.decorate(ax, x=style.axis_label(x) if spec.is_last_row() or n == 1 else None,
                       y=labels.quantity_label(data, plan) if spec.is_first_col() else None,
                       log_grid=ylog)
        ax.xaxis.set_tick_params(labelbottom=True)
    fig.suptitle(labels.title(data, plan, int(fig.get_figwidth() * 15.5)),
                 fontsize=style.SUPTITLE_SIZE)
    _legend(fig, axs[0], legend, plan, _spread_title(data, sgd_time))
    return fig


def _spread_title(data: ResultTable, sgd_time: bool) -> str | None:
    """Simulations: what their error bars (bands over time) are."""
    if data.method != "simulate" or data.seeds is None:
        return None
    return f"{'bands' if sgd_time else 'error bars'}: {style.spread(data.seeds, data.errors)}"


def _legend(fig, ax, legend: dict, plan: FigurePlan, title: str | None) -> None:
    handles, names = list(legend.values()), list(legend)
    fig.twolayer_labels = names
    if plan.kind == "panels" or len(names) > 8:
        style.legend(fig, handles, names, loc="outside right center", title=title,
                     ncols=1 if len(names) <= 20 else 2)
    elif handles:
        style.legend(ax, handles, names, title=title)


def _eta(data: ResultTable, g: pd.DataFrame) -> float | None:
    if "eta" in g.columns:
        vals = g["eta"].unique()
        return float(vals[0]) if len(vals) == 1 else None
    return data.params.get("eta")


def _curve_colours(rows: pd.DataFrame, cols: list[str], keys: list[tuple],
                   rf: dict[tuple, bool]) -> dict[tuple, Any]:
    """Colour of each curve key (a missing key: the RF baseline's colour).

    One RF baseline is :data:`~twolayer.plotting.style.RF_COLOUR`. When the curves are
    η̃ ∈ {0, η̃₁} times other values, an RF curve shares its colour with the η̃₁ curve of the
    same other values (dashed vs solid). One numeric parameter with 6 or more values gets a
    sequential scale, as do more than 10 colours; otherwise the palette.
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
    ordered = len(cols) == 1 and numeric(rows[cols[0]]) and n >= 6
    if ordered or n > len(style.PALETTE):
        cmap = matplotlib.colormaps[style.SEQUENTIAL]
        palette = [cmap(0.9 * i / max(n - 1, 1)) for i in range(n)]
    else:
        palette = [style.colour(i) for i in range(n)]
    colour = dict(zip(distinct, palette, strict=True))
    return {k: colour[shade[k]] for k in keys}


def _draw(ax, data: ResultTable, g: pd.DataFrame, x: str, colour, rf: bool, failed: bool,
          gid: str, sgd_time: bool):
    """One curve; returns its legend handle. Invalid samples are NaN in the line data."""
    if numeric(g[x]):
        g = g.sort_values(x, kind="stable")
    xs = g[x].to_numpy()
    ys = np.where(g["valid"], g["y"], np.nan)
    es = np.where(g["valid"], g["err"], np.nan)
    nodata = not np.isfinite(ys).any()
    if nodata:
        colour = style.NO_DATA_COLOUR
    line_style = style.RF if rf else style.THEORY
    ls = ":" if (failed and data.model == "sgd") or nodata else line_style["ls"]
    if not numeric(g[x]):
        ls = "none"  # categories (activation names): no line between them
    sim = data.method == "simulate"
    if sim and not sgd_time:
        handle = ax.errorbar(xs, ys, yerr=es, **{**style.ERRORBAR, "ls": ls}, color=colour,
                             mfc="white" if rf else colour)
        line = handle.lines[0]
    else:
        few = np.isfinite(ys).sum() < 8
        (line,) = ax.plot(xs, ys, ls=ls, lw=line_style["lw"], color=colour,
                          marker="o" if (few or ls == "none") and not sgd_time else None,
                          ms=4 if ls == "none" else 3)
        handle = line
        if sim:  # SGD simulation: ±1 std band
            lo, hi = style.band_limits(ys, es)
            ax.fill_between(xs, lo, hi, color=colour, alpha=style.BAND_ALPHA, lw=0)
        if sgd_time and failed and not nodata:
            last = np.flatnonzero(np.isfinite(ys))[-1]
            ax.plot([xs[last]], [ys[last]], "x", color=colour, ms=7, mew=1.5)
    line.set_gid(gid)
    return handle


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


def _scales(axs, rows, x, xlog, ylog) -> None:
    good = rows[rows["valid"]]
    if xlog:
        for ax in axs:
            ax.set_xscale("log")
    if ylog and (good["y"] > 0).any():
        for ax in axs:
            ax.set_yscale("log")
    if not numeric(rows[x]):
        return
    xv = rows[x].to_numpy(dtype=float)
    xv = xv[np.isfinite(xv) & ((xv > 0) if xlog else True)]
    if xv.size and xv.min() == xv.max():  # one point: give it some room
        lim = (xv[0] / 2, xv[0] * 2) if xlog else (xv[0] - 1, xv[0] + 1)
        for ax in axs:
            ax.set_xlim(*lim)
