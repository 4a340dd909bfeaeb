"""Figures (matplotlib, Agg backend): one-step learning curves, SGD risk curves."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

__all__ = ["plot_onestep", "plot_sgd"]


def plot_onestep(
    path: str | os.PathLike,
    theory: xr.Dataset | None = None,
    simulation: xr.Dataset | None = None,
    rf: xr.Dataset | None = None,
    title: str | None = None,
) -> None:
    """Test error vs α: theory (line), simulation (mean ± std over seeds), RF baseline (dashed).

    One colour per λ. Points where the theory did not converge are left out of the line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8), constrained_layout=True)
    ref = theory if theory is not None else simulation
    lams = ref["lam"].values
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, lam in enumerate(lams):
        col = colors[i % len(colors)]
        tag = f" (λ={lam:g})" if len(lams) > 1 else ""
        if theory is not None:
            th = theory.sel(lam=lam)
            y = np.where(th["converged"].values, th["test_error"].values, np.nan)
            ax.plot(th["alpha"], y, "-", color=col, label="one-step theory" + tag)
        if rf is not None:
            r = rf.sel(lam=lam)
            y = np.where(r["converged"].values, r["test_error"].values, np.nan)
            ax.plot(r["alpha"], y, "--", color=col, alpha=0.8, label="RF theory (η̃=0)" + tag)
        if simulation is not None:
            sm = simulation.sel(lam=lam)
            ax.errorbar(
                sm["alpha"], sm["test_error_mean"], yerr=sm["test_error_std"], fmt="o",
                color=col, ms=4, capsize=2,
                label=f"simulation (d={_param(simulation, 'd')}, "
                f"{simulation.sizes['seed']} seeds)" + tag,
            )
    ax.set_xlabel("α = n / d  (readout samples per dimension)")
    ax.set_ylabel("test error  E(y − f(x))²")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _param(ds: xr.Dataset, key: str):
    import json

    return json.loads(ds.attrs.get("params", "{}")).get(key, "?")


def plot_sgd(
    path: str | os.PathLike,
    ode: xr.Dataset | None = None,
    simulation: xr.Dataset | None = None,
    title: str | None = None,
) -> None:
    """Excess risk vs t on log-log axes: ODE (line), simulation mean with a ±1 std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8), constrained_layout=True)
    if simulation is not None:
        t = simulation["t"].values
        m, s = simulation["risk_mean"].values, simulation["risk_std"].values
        keep = t > 0
        ax.fill_between(t[keep], np.maximum(m - s, m * 1e-3)[keep], (m + s)[keep],
                        color="C1", alpha=0.3, lw=0)
        ax.plot(t[keep], m[keep], "o", color="C1", ms=3,
                label=f"simulation (d={_param(simulation, 'd')}, "
                f"{simulation.sizes['seed']} seeds, mean ± std)")
    if ode is not None:
        keep = ode["t"].values > 0
        ax.plot(ode["t"].values[keep], ode["risk"].values[keep], "-", color="C0",
                label="ODE" + ("" if ode.attrs.get("status") == "ok"
                               else f" ({ode.attrs.get('status')})"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("t = ν γ / (p d)   (SGD steps ν, rescaled)")
    ax.set_ylabel("excess risk  ½ E(ŷ − y*)²")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    ax.grid(alpha=0.3, which="both")
    fig.savefig(path, dpi=150)
    plt.close(fig)
