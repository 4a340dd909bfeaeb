"""The recipes' figures: merged experiment results in, a matplotlib Figure out (nothing saved).

Failed or non-converged points are left out (NaN), never drawn as values; the legend says so.
Each function takes the recipe's results (experiment name → Dataset) and its size values.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

_RF_STYLE = {"ls": "--", "color": "0.35"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _params(ds: xr.Dataset) -> dict:
    return json.loads(ds.attrs.get("params", "{}"))


def _ok(ds: xr.Dataset, var: str) -> xr.DataArray:
    """``ds[var]`` with NaN wherever the point's status is not ok (or the theory not converged)."""
    good = ds["status"] == "ok"
    if "converged" in ds:
        good = good & ds["converged"]
    return ds[var].where(good)


def _failed(ds: xr.Dataset) -> int:
    return int((ds["status"] != "ok").sum())


def _first_lam(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(lam=0) if "lam" in ds.dims else ds


# ------------------------------------------------------------------------------ one step
def onestep_curves(results: dict[str, xr.Dataset], size: dict):
    """Test error vs α: theory lines per η̃ (η̃ = 0, RF, dashed), simulations mean ± std."""
    plt = _plt()
    th, sim = _first_lam(results["theory"]), _first_lam(results["simulation"])
    prm = _params(th)
    fig, ax = plt.subplots(figsize=(5.4, 4.0), constrained_layout=True)
    for i, eta in enumerate(th["eta"].values):
        rf = eta == 0
        col = _RF_STYLE["color"] if rf else f"C{i}"
        name = "RF (η̃ = 0)" if rf else f"one step, η̃ = {eta:g}"
        ax.plot(th["alpha"], _ok(th.sel(eta=eta), "test_error"), ls="--" if rf else "-",
                color=col, label=name + " theory")
        if eta in sim["eta"].values:
            s = sim.sel(eta=eta)
            ax.errorbar(s["alpha"], _ok(s, "test_error_mean"), yerr=_ok(s, "test_error_std"),
                        fmt="o", ms=4, capsize=2, color=col)
    sp = _params(sim)
    ax.plot([], [], "o", color="k", ms=4, label=f"simulation, d = {sp['d']} (mean ± std, "
            f"{sim.sizes['seed']} seeds)")
    ax.set_xlabel("α = n / d   (readout samples per dimension)")
    ax.set_ylabel("test error   E(y − ŷ)²")
    ax.set_title(f"{prm['student']} network, {prm['teacher']} target, α0 = {prm['alpha0']:g}, "
                 f"λ = {th['lam'].item():g}", fontsize=9)
    _failed_note(ax, results)
    ax.legend(fontsize=7, frameon=False)
    ax.grid(alpha=0.3)
    return fig


def onestep_alignment(results: dict[str, xr.Dataset], size: dict):
    """Spike overlap with the teacher vs α0: theory γ(α0) and simulations per η̃."""
    from twolayer.onestep import step_map

    plt = _plt()
    sim = results["simulation"].isel(alpha=0, lam=0)
    prm = _params(sim)
    a0 = sim["alpha0"].values
    grid = np.geomspace(a0.min() / 1.5, a0.max() * 1.5, 200)
    theory = [step_map(prm["student"], prm["teacher"], a, 1.0, prm["noise"]).alignment
              for a in grid]
    fig, ax = plt.subplots(figsize=(5.4, 4.0), constrained_layout=True)
    ax.plot(grid, theory, "-", color="k", label="theory γ = μ1⋆ / ‖g‖ (any η̃ > 0)")
    overlap = _ok(sim, "spike_overlap")
    for i, eta in enumerate(sim["eta"].values):
        o = overlap.sel(eta=eta)
        shift = 1.0 + 0.03 * (i - (sim.sizes["eta"] - 1) / 2)  # side by side, not on top
        ax.errorbar(a0 * shift, o.mean("seed"), yerr=o.std("seed", ddof=1), fmt="o", ms=4,
                    capsize=2, color=f"C{i}", label=f"simulation, η̃ = {eta:g}")
    ax.set_xscale("log")
    ticks = [x for x in (0.1, 0.2, 0.5, 1, 2, 5, 10) if grid[0] <= x <= grid[-1]]
    ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
    ax.minorticks_off()
    ax.set_ylim(0, 1)
    ax.set_xlabel("α0 = n0 / d   (samples in the giant step, per dimension)")
    ax.set_ylabel("spike alignment   |v₁ · θ|")
    ax.set_title(f"{prm['student']} network, {prm['teacher']} target; simulation d = "
                 f"{prm['d']}, mean ± std over {sim.sizes['seed']} seeds", fontsize=9)
    _failed_note(ax, results)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    return fig


def gap_to_rf(theory: xr.Dataset) -> xr.DataArray:
    """E_RF − E_one-step on (alpha0, eta): RF is the η̃ = 0 row (it does not depend on α0)."""
    err = _ok(theory, "test_error").squeeze(("alpha", "lam"), drop=True)
    if 0.0 not in err["eta"].values:
        raise ValueError("the gap to RF needs eta = 0 in the sweep")
    return err.sel(eta=0.0) - err


def onestep_gap(results: dict[str, xr.Dataset], size: dict):
    """Heat map of E_RF − E_one-step over (η̃, α0) at one α, with the zero contour."""
    from matplotlib.colors import TwoSlopeNorm

    plt = _plt()
    th = results["theory"]
    prm = _params(th)
    gap = gap_to_rf(th).transpose("alpha0", "eta")
    fig, ax = plt.subplots(figsize=(5.4, 4.0), constrained_layout=True)
    lim = float(np.nanmax(np.abs(gap.values))) or 1.0
    mesh = ax.pcolormesh(gap["eta"], gap["alpha0"], gap.values, shading="nearest",
                         cmap="RdBu", norm=TwoSlopeNorm(0.0, -lim, lim))
    step = gap.sel(eta=gap["eta"] > 0)  # η̃ = 0 is RF itself: gap ≡ 0 there
    if step.sizes["eta"] > 1 and np.nanmin(step.values) < 0 < np.nanmax(step.values):
        ax.contour(step["eta"], step["alpha0"], step.values, levels=[0.0], colors="k",
                   linewidths=0.8)
    fig.colorbar(mesh, ax=ax, label="E_RF − E_one step   (> 0: the step helps)")
    ax.set_yscale("log")
    ax.set_xlabel("η̃   (giant step's learning rate, rescaled)")
    ax.set_ylabel("α0 = n0 / d")
    ax.set_title(f"d = ∞ theory, {prm['student']}/{prm['teacher']}, α = "
                 f"{th['alpha'].item():g}, λ = {th['lam'].item():g}", fontsize=9)
    _failed_note(ax, results)
    return fig


# ------------------------------------------------------------------------------ SGD
_PANELS = (("classical", "classical_ode", "classical_sim", "classical_flow"),
           ("high-dimensional", "highdim_ode", "highdim_sim", "highdim_flow"),
           ("mean-field", "meanfield_ode", "meanfield_sim", None))


def sgd_regimes(results: dict[str, xr.Dataset], size: dict):
    """One log-log panel per regime: ODE line, simulation mean ± std band, gradient flow."""
    from twolayer.sgd.regimes import classify

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12.0, 3.9), constrained_layout=True)
    for ax, (title, ode_name, sim_name, flow_name) in zip(axes, _PANELS, strict=True):
        ode, sim = results[ode_name], results[sim_name]
        prm = _params(sim)
        t = sim["t"].values
        keep = t > 0
        mean, std = _ok(sim, "risk_mean").values, _ok(sim, "risk_std").values
        ax.fill_between(t[keep], np.maximum(mean - std, mean * 1e-2)[keep], (mean + std)[keep],
                        color="C1", alpha=0.3, lw=0)
        ax.plot(t[keep], mean[keep], "o", ms=3, color="C1",
                label=f"SGD, d = {prm['d']} ({sim.sizes['seed']} seeds, mean ± std)")
        wide = _params(ode).get("wide", False)
        ok = ode.attrs.get("status", "ok") if "status" not in ode else str(ode["status"].item())
        tt = ode["t"].values
        ax.plot(tt[tt > 0], _ok(ode, "risk").values[tt > 0], "-", color="C0",
                label=("reduced ODE (p → ∞)" if wide else "ODE") +
                ("" if ok == "ok" else f" ({ok})"))
        if flow_name is not None:
            fl = results[flow_name]
            tf = fl["t"].values
            ax.plot(tf[tf > 0], _ok(fl, "risk").values[tf > 0], ":", color="k",
                    label="gradient flow (no variance term)")
        reg = classify(prm["d"], prm["p"], prm["gamma"])
        ax.set_title(f"{title}: p = {prm['p']}, k = {prm['k']}, γ = {prm['gamma']:g}, "
                     f"Δ = {prm['noise']:g}\n(γ/p = {prm['gamma'] / prm['p']:.3g}; "
                     f"classified: {reg.name})", fontsize=9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("t = ν γ / (p d)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, frameon=False, loc="lower left")
    axes[0].set_ylabel("excess risk   ½ E(ŷ − y*)²")
    _failed_note(axes[-1], results)
    return fig


PHASES = ("classical", "mean-field", "high-dimensional", "mixed", "variance-dominated", "no-ODE")


def phase_map(kappa: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Index into :data:`PHASES` of the regime at each (δ, κ) (rows δ, columns κ)."""
    from twolayer.sgd.regimes import classify_exponents

    return np.array([[PHASES.index(classify_exponents(k, d).name) for k in kappa]
                     for d in delta])


def sgd_phases(results: dict[str, xr.Dataset], size: dict):
    """Regimes over (κ, δ) with p ∝ d^κ, γ ∝ d^(−δ); the marginal line κ + δ = 0 drawn."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    plt = _plt()
    n = int(size["n"])
    kappa = np.linspace(0.0, 1.5, n)
    delta = np.linspace(-2.0, 1.0, n)
    idx = phase_map(kappa, delta)
    colors = ["#9ecae1", "#a1d99b", "#3182bd", "#31a354", "#fdae6b", "#d9d9d9"]
    fig, ax = plt.subplots(figsize=(5.4, 4.2), constrained_layout=True)
    ax.pcolormesh(kappa, delta, idx, shading="nearest", cmap=ListedColormap(colors),
                  vmin=-0.5, vmax=len(PHASES) - 0.5)
    # the regimes on lines (zero area on the grid): classical κ = 0, δ > 0; κ + δ = 0
    ax.plot([0, 0], [0, delta[-1]], "-", color=colors[0], lw=6, solid_capstyle="butt")
    ax.plot(kappa, -kappa, "-", color=colors[3], lw=2.5)
    ax.plot(kappa, -kappa - 0.5, "--", color="0.3", lw=1)
    ax.plot([0], [0], "o", color=colors[2], ms=7)
    ax.annotate("Saad & Solla\n(p, γ fixed)", (0, 0), (0.08, 0.25), fontsize=7,
                arrowprops={"arrowstyle": "-", "lw": 0.5})
    labels = {"classical": "classical (κ = 0, δ > 0)", "mean-field": "mean-field (κ + δ > 0)",
              "high-dimensional": "high-dimensional (κ = δ = 0)",
              "mixed": "mixed (κ + δ = 0, κ > 0)",
              "variance-dominated": "variance-dominated (−½ < κ + δ < 0)",
              "no-ODE": "no ODE (κ + δ ≤ −½)"}
    handles = [Patch(color=c, label=labels[name]) for c, name in zip(colors, PHASES,
                                                                       strict=True)]
    ax.legend(handles=handles, fontsize=7, loc="upper right", framealpha=0.9)
    ax.set_xlim(kappa[0] - 0.02, kappa[-1])  # the classical line κ = 0 fully visible
    ax.set_ylim(delta[0], delta[-1])
    ax.set_xlabel("κ   (width p ∝ d^κ)")
    ax.set_ylabel("δ   (learning rate γ ∝ d^(−δ))")
    ax.set_title("one-pass SGD of committee machines: which limit applies", fontsize=9)
    return fig


def _failed_note(ax, results: dict[str, xr.Dataset]) -> None:
    bad = {name: _failed(ds) for name, ds in results.items() if _failed(ds)}
    if bad:
        text = ", ".join(f"{n}: {c}" for n, c in bad.items())
        ax.text(0.01, 0.01, f"failed points left out — {text}", transform=ax.transAxes,
                fontsize=6, color="C3", va="bottom")
