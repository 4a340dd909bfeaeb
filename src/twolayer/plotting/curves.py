"""What a command's ``--plot FILE`` draws: the theory beside the simulation of one run.

- :func:`plot_onestep` — test error vs α: sRF theory (line), simulation (mean ± std over
  seeds), the random-features baseline (dashed); one colour per λ;
- :func:`plot_sgd` — excess risk vs t on log-log axes: ODE (line), simulation mean with a ±1 std
  band.

Each builds a :class:`matplotlib.figure.Figure` (:func:`onestep_figure`, :func:`sgd_figure`) in
the one style and writes it with :func:`~twolayer.plotting.save.save_figure` (format from the
suffix: .png, .pdf or .svg).
"""

from __future__ import annotations

import json
import os

import numpy as np
import xarray as xr

from twolayer.plotting import style
from twolayer.plotting.meta import meta
from twolayer.plotting.save import save_figure

__all__ = ["onestep_figure", "plot_onestep", "plot_sgd", "sgd_figure"]


def onestep_figure(theory: xr.Dataset | None = None, simulation: xr.Dataset | None = None,
                   rf: xr.Dataset | None = None, title: str | None = None):
    """Test error vs α: theory (line), simulation (mean ± std over seeds), RF baseline (dashed).

    One colour per λ (one λ: the RF baseline in its own grey). Points where the theory did not
    converge are left out of the line.
    """
    fig = style.new_figure()
    ax = fig.subplots()
    ref = theory if theory is not None else simulation
    lams = ref["lam"].values
    for i, lam in enumerate(lams):
        col = style.colour(i)
        tag = f", λ = {lam:g}" if len(lams) > 1 else ""
        if theory is not None:
            name = _theory_name(theory)
            ax.plot(theory["alpha"], _converged(theory.sel(lam=lam)), **style.THEORY, color=col,
                    label=name + tag)
        if rf is not None:
            ax.plot(rf["alpha"], _converged(rf.sel(lam=lam)), **style.RF,
                    color=style.RF_COLOUR if len(lams) == 1 else col, label=style.RF_LABEL + tag)
        if simulation is not None:
            sm = simulation.sel(lam=lam)
            ax.errorbar(sm["alpha"], sm["test_error_mean"], yerr=sm["test_error_std"],
                        **style.ERRORBAR, color=col,
                        label=style.simulation_label(meta(simulation).param("d"),
                                                     simulation.sizes["seed"], tag=tag))
    style.decorate(ax, x=style.axis_label("alpha"), y=style.y_label("onestep"), title=title)
    style.legend(ax)
    return fig


def _theory_name(theory: xr.Dataset) -> str:
    """The legend entry of a one-step theory curve: which theory it is."""
    if "degrees" in theory.attrs:
        return "d = ∞ limit of the growing step"
    params = json.loads(theory.attrs["params"])
    if theory.attrs.get("spectrum") == "post-step":
        return f"post-step theory (the runs' own W1, d = {params['d']})"
    if params.get("bulk") == "step":
        return style.CURVE_NAME["theory"] + ", the step's own bulk"
    if params.get("a_init") == "gaussian":
        return style.CURVE_NAME["theory"] + " over neuron types (Gaussian a)"
    return style.CURVE_NAME["theory"]


def _converged(ds: xr.Dataset) -> np.ndarray:
    return np.where(ds["converged"].values, ds["test_error"].values, np.nan)


def sgd_figure(ode: xr.Dataset | None = None, simulation: xr.Dataset | None = None,
               title: str | None = None):
    """Excess risk vs t on log-log axes: ODE (line), simulation mean with a ±1 std band."""
    fig = style.new_figure()
    ax = fig.subplots()
    if simulation is not None:
        t = simulation["t"].values
        keep = t > 0
        lo, hi = style.band_limits(simulation["risk_mean"].values, simulation["risk_std"].values)
        ax.fill_between(t[keep], lo[keep], hi[keep], color=style.SIMULATION_COLOUR,
                        alpha=style.BAND_ALPHA, lw=0)
        ax.plot(t[keep], simulation["risk_mean"].values[keep], **style.MARKER,
                color=style.SIMULATION_COLOUR,
                label=style.simulation_label(meta(simulation).param("d"),
                                             simulation.sizes["seed"]))
    if ode is not None:
        keep = ode["t"].values > 0
        status = meta(ode).status
        ax.plot(ode["t"].values[keep], ode["risk"].values[keep], **style.THEORY,
                color=style.THEORY_COLOUR,
                label=style.CURVE_NAME["ode"] + ("" if status == "ok" else f" ({status})"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    style.decorate(ax, x=style.axis_label("t"), y=style.y_label("sgd"), title=title,
                   log_grid=True)
    style.legend(ax)
    return fig


def plot_onestep(path: str | os.PathLike, theory: xr.Dataset | None = None,
                 simulation: xr.Dataset | None = None, rf: xr.Dataset | None = None,
                 title: str | None = None, *, overwrite: bool = True):
    """Draw :func:`onestep_figure` and write it to ``path``; returns the Figure.

    ``overwrite=False`` refuses to replace a file that is not a twolayer figure (the command
    line checks ``--overwrite`` itself before computing anything).
    """
    fig = onestep_figure(theory, simulation, rf, title)
    save_figure(fig, path, overwrite=overwrite)
    return fig


def plot_sgd(path: str | os.PathLike, ode: xr.Dataset | None = None,
             simulation: xr.Dataset | None = None, title: str | None = None, *,
             overwrite: bool = True):
    """Draw :func:`sgd_figure` and write it to ``path``; returns the Figure."""
    fig = sgd_figure(ode, simulation, title)
    save_figure(fig, path, overwrite=overwrite)
    return fig
