"""Several results on one pair of axes (``twolayer plot a.nc b.nc``): a theory beside a simulation.

Each result is read as for its own figure (:mod:`twolayer.plotting.table`) and drawn as curves
(kind "curves": one line per value of its other parameters) on the same axes. The results must
agree on the horizontal axis (α for one-step results, t for SGD, or the parameter given as
``x``) and on the plotted quantity (the one-step test error, or the SGD excess risk); anything
else is refused with one line. Every legend entry starts with the result's file name and says
its method; a simulation's entry says what its error bars (bands over time) are — "mean ± std
over N seeds" or, with ``errors="se"``, "mean ± s.e. over N seeds" (s.e. = std/√N).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr

from twolayer.errors import ParameterError
from twolayer.plotting import labels, style, table
from twolayer.plotting.plan import at_end, make
from twolayer.plotting.result_lines import _draw

__all__ = ["overlay"]


def _read(name: str, ds: xr.Dataset, x: str | None, errors: str):
    try:
        data = table.with_errors(table.read(ds), errors)
        plan = make(data, x, "curves")
    except ParameterError as e:
        raise ParameterError(f"{name!r}: {e}") from None
    return data, plan


def overlay(results: Sequence[tuple[str, xr.Dataset]], *, x: str | None = None,
            errors: str = "std", logx: bool | None = None, logy: bool | None = None):
    """One figure with the curves of every result in ``results`` ([(name, Dataset)]).

    ``x``: the horizontal axis (default: α or t), the same for all; ``errors``: "std" or "se"
    for the simulations' bars and bands; ``logx`` / ``logy``: force a scale (None: log-log for
    SGD risks over time, linear otherwise). Returns a Figure whose curves' data lines have the
    gid ``"curve:<legend label>"`` and ``fig.twolayer_labels`` (the legend entries). Raises
    ParameterError (one line) for results that cannot share the axes.
    """
    if not results:
        raise ParameterError("nothing to plot: no result given")
    read = [(name, *_read(name, ds, x, errors)) for name, ds in results]
    first_name, first, first_plan = read[0]
    for name, data, plan in read[1:]:
        if plan.x != first_plan.x or plan.quantity != first_plan.quantity or \
                plan.reduced != first_plan.reduced:
            raise ParameterError(
                f"cannot overlay {name!r} ({_what(data, plan)}) on {first_name!r} "
                f"({_what(first, first_plan)}): they do not share their axes")
    x = first_plan.x
    sgd_time = first.model == "sgd" and x == "t"
    fig = style.new_figure(style.FIGSIZE)
    ax = fig.subplots()
    legend: dict[str, Any] = {}
    i_colour = 0
    for name, data, plan in read:
        rows = at_end(data, plan.curve_axis) if plan.reduced else data.rows
        if sgd_time:
            rows = rows[rows["t"] > 0]  # log axis
        cols = [a for f in plan.families for a in f]
        for key in table.keys(rows, cols):
            g = table.select(rows, cols, key)
            if g.empty:
                continue
            label = _label(name, data, dict(zip(cols, key, strict=True)))
            fail = labels.failure(data, plan, g)
            rf = data.model == "onestep" and x != "eta" and _eta(data, g) == 0.0
            handle = _draw(ax, data, g, x, style.colour(i_colour), rf, bool(fail),
                           f"curve:{label}", sgd_time)
            i_colour += 1
            legend[f"{label} — {fail}" if fail else label] = handle
    ax.set_xscale("log" if (sgd_time if logx is None else logx) else "linear")
    ax.set_yscale("log" if (sgd_time if logy is None else logy) else "linear")
    style.decorate(ax, x=style.axis_label(x), y=labels.quantity_label(first, first_plan),
                   log_grid=ax.get_yscale() == "log")
    fig.twolayer_labels = list(legend)
    fig.twolayer_x = x
    style.legend(ax, list(legend.values()), list(legend))
    return fig


def _what(data, plan) -> str:
    what = f"x = {plan.x}, {plan.quantity}"
    return what + (f" at the end of {plan.curve_axis}" if plan.reduced else "")


def _eta(data, g) -> float | None:
    if "eta" in g.columns:
        vals = g["eta"].unique()
        return float(vals[0]) if len(vals) == 1 else None
    return data.params.get("eta")


def _label(name: str, data, key: dict) -> str:
    """``"sim.nc: simulation, λ = 0.01 (mean ± s.e. over 3 seeds)"``."""
    import os

    text = f"{os.path.basename(name)}: {style.CURVE_NAME[data.method]}"
    if key:
        text += ", " + labels.label(key)
    if data.seeds is not None:
        n = data.seeds
        text += f" (mean ± {style.ERRORS[data.errors]} over {n} seed{'s' if n != 1 else ''})"
    return text
