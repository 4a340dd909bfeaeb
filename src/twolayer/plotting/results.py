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
labelled "RF (η̃ = 0)". Simulations: the legend's title says what the error bars (SGD over
time: bands) are, "error bars: 3 seeds (mean ± std)"; the style is :mod:`~twolayer.plotting.style`.

The steps: :mod:`~twolayer.plotting.table` reads the result into rows,
:mod:`~twolayer.plotting.plan` picks the figure, :mod:`~twolayer.plotting.result_lines` or
:mod:`~twolayer.plotting.result_heatmap` draws it with the words of
:mod:`~twolayer.plotting.labels`. matplotlib is imported inside the drawing functions
(``twolayer --help`` stays fast); figures are :class:`matplotlib.figure.Figure` objects built
without pyplot (no global state).
"""

from __future__ import annotations

import os
from typing import Any

import xarray as xr

from twolayer.errors import ParameterError
from twolayer.plotting import result_heatmap, result_lines, table
from twolayer.plotting.plan import KINDS, MAX_PANEL_CURVES, MAX_PANELS, FigurePlan, make
from twolayer.plotting.save import figure_paths, save_figure

__all__ = ["KINDS", "MAX_PANELS", "MAX_PANEL_CURVES", "FigurePlan", "figure_paths",
           "figure_plan", "plot_file", "plot_result", "save_figure"]


def figure_plan(ds: xr.Dataset, *, x: str | None = None, kind: str = "auto") -> FigurePlan:
    """Which figure :func:`plot_result` draws for ``ds`` (no matplotlib involved)."""
    return make(table.read(ds), x, kind)


def plot_result(ds: xr.Dataset, *, x: str | None = None, kind: str = "auto",
                errors: str = "std", logx: bool | None = None, logy: bool | None = None):
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
    errors : {"std", "se"}
        Simulations' error bars and bands: ±1 std over the N seeds (ddof = 1), or ±1 standard
        error of the mean, std/√N. The legend says which.
    logx, logy : bool, optional
        Force a logarithmic (True) or linear (False) axis; by default log-log for SGD risks over
        time, linear otherwise (a logspace sweep on x: log). Not for heatmaps.

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
    data = table.with_errors(table.read(ds), errors)
    plan = make(data, x, kind)
    if plan.kind == "heatmap":
        if logx is not None or logy is not None:
            raise ParameterError("--logx/--logy do not apply to a heatmap")
        fig = result_heatmap.draw(data, plan)
    else:
        fig = result_lines.draw(data, plan)
        for ax in fig.axes:
            if not ax.get_visible() or ax.get_label() == "<colorbar>":
                continue
            if logx is not None:
                ax.set_xscale("log" if logx else "linear")
            if logy is not None:
                ax.set_yscale("log" if logy else "linear")
    fig.twolayer_plan = plan
    return fig

def plot_file(result: str | os.PathLike | list, out: str | os.PathLike | None = None, *,
              x: str | None = None, kind: str = "auto", overwrite: bool = False,
              errors: str = "std", logx: bool | None = None, logy: bool | None = None
              ) -> dict[str, Any]:
    """Read result files, draw the figure, write PNG and PDF; return what was done.

    One file: its natural figure (:func:`plot_result`). Several (a list): their curves on one
    pair of axes (:func:`twolayer.plotting.overlay.overlay`; ``kind`` must be "auto" or
    "curves"); the figure goes next to the first by default. The returned dict has
    ``figures`` ([png, pdf]), ``result`` (the file, or the list of files), ``kind``, ``x``
    (one file: every field of the :class:`FigurePlan`), ``errors`` and ``labels`` (the legend
    entries, with what went wrong; a heatmap: its cells).
    """
    from twolayer.io import load_netcdf

    files = [str(r) for r in result] if isinstance(result, (list, tuple)) else [str(result)]
    if not files:
        raise ParameterError("nothing to plot: no result file given")
    if errors not in ("std", "se"):
        raise ParameterError(f"--errors must be 'std' or 'se'; got {errors!r}")
    png, pdf = figure_paths(files[0], out)  # a bad --out fails before any reading
    if len(files) == 1:
        try:
            fig = plot_result(load_netcdf(files[0]), x=x, kind=kind, errors=errors, logx=logx,
                              logy=logy)
        except ParameterError as e:
            raise ParameterError(f"{files[0]!r}: {e}") from None
        info = fig.twolayer_plan.to_dict()
    else:
        from twolayer.plotting.overlay import overlay

        if kind not in ("auto", "curves"):
            raise ParameterError(f"several results are drawn as curves on one pair of axes; "
                                 f"--kind {kind} is for one result")
        fig = overlay([(f, load_netcdf(f)) for f in files], x=x, errors=errors, logx=logx,
                      logy=logy)
        info = {"kind": "overlay", "x": fig.twolayer_x}
    written = save_figure(fig, png, pdf, overwrite=overwrite)
    return {"figures": [str(p) for p in written], "result": files[0] if len(files) == 1
            else files, **info, "errors": errors, "labels": fig.twolayer_labels}
