"""The figures of ``twolayer reproduce``: merged experiment results in, a Figure out (not
saved).

Failed or non-converged points are left out (NaN), never drawn as values; the figure says so.
Each function takes the recipe's results (experiment name → Dataset) and its size values; the
style (labels, colours, the RF baseline, error bars and bands) is :mod:`twolayer.plotting.style`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from twolayer.plotting import style
from twolayer.plotting.meta import failed_count, meta, ok_mask, point_status

__all__ = ["PHASES", "deviations", "gap_to_rf", "ode_deviation", "onestep_alignment",
           "onestep_curves", "onestep_gap", "onestep_growing", "onestep_steps",
           "onestep_validity", "phase_map", "predicted_degrees", "sgd_meanfield", "sgd_phases",
           "sgd_regimes", "validity_gaps"]


def _ok(ds: xr.Dataset, var: str) -> xr.DataArray:
    """``ds[var]`` with NaN wherever the point's status is not ok (or the theory not converged)."""
    return ds[var].where(ok_mask(ds))


def _first_lam(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(lam=0) if "lam" in ds.dims else ds


# ------------------------------------------------------------------------------ one step
def onestep_curves(results: dict[str, xr.Dataset], size: dict):
    """Test error vs α: theory lines per η̃ (η̃ = 0, RF, dashed), simulations mean ± std."""
    th, sim = _first_lam(results["theory"]), _first_lam(results["simulation"])
    prm = meta(th).params
    fig = style.new_figure()
    ax = fig.subplots()
    for i, eta in enumerate(th["eta"].values):
        rf = eta == 0
        col = style.RF_COLOUR if rf else style.colour(i)
        name = style.RF_LABEL if rf else f"one step, η̃ = {eta:g}"
        ax.plot(th["alpha"], _ok(th.sel(eta=eta), "test_error"),
                **(style.RF if rf else style.THEORY), color=col, label=name + " theory")
        if eta in sim["eta"].values:
            s = sim.sel(eta=eta)
            ax.errorbar(s["alpha"], _ok(s, "test_error_mean"), yerr=_ok(s, "test_error_std"),
                        **style.ERRORBAR, color=col, mfc="white" if rf else col)
    ax.errorbar([], [], yerr=[], **style.ERRORBAR, color="k",
                label=style.simulation_label(meta(sim).param("d"), sim.sizes["seed"]))
    style.decorate(ax, x=style.axis_label("alpha"), y=style.y_label("onestep"),
                   title=f"{prm['student']} network, {prm['teacher']} target, α₀ = "
                         f"{prm['alpha0']:g}, λ = {th['lam'].item():g}")
    ax.text(0.99, 0.70, _deviation_note(th, sim), transform=ax.transAxes, ha="right",
            va="top", fontsize=style.NOTE_SIZE)  # below the legend, above the curves
    _failed_note(ax, results)
    style.legend(ax)
    return fig


def onestep_steps(results: dict[str, xr.Dataset], size: dict):
    """Test error vs α after T = 1, 2, 3 steps at equal total samples: theory lines,
    simulations mean ± std, and each T's simulation − theory range."""
    fig = style.new_figure()
    ax = fig.subplots()
    notes, prm, sim = [], {}, None
    for i, t in enumerate(sorted(int(k.removeprefix("theory_T")) for k in results
                                 if k.startswith("theory_T"))):
        th, sim = _first_lam(results[f"theory_T{t}"]), _first_lam(results[f"simulation_T{t}"])
        prm = meta(th).params
        a0 = prm["alpha0"] if isinstance(prm["alpha0"], list) else [prm["alpha0"]]
        notes.append(_theory_beside_simulation(
            ax, th, sim, style.colour(i),
            f"T = {t} step{'s' if t > 1 else ''} of α₀ = {a0[0]:.3g}", f"T = {t}"))
    style.decorate(ax, x=style.axis_label("alpha"), y=style.y_label("onestep"),
                   title=f"{prm.get('student')} network, {prm.get('teacher')} target, "
                         "n0 = 2d split over T steps, η̃ = 1")
    _simulations_note(ax, sim, notes)
    _failed_note(ax, results)
    style.legend(ax)
    return fig




def _theory_beside_simulation(ax, th, sim, col, label: str, tag: str) -> str | None:
    """A theory line and its simulations (mean ± std) in one colour; returns the note
    "tag: min … max" of (simulation − theory)/theory over the simulated α, or None."""
    ax.plot(th["alpha"], _ok(th, "test_error"), **style.THEORY, color=col,
            label=f"{label}, theory")
    ax.errorbar(sim["alpha"], _ok(sim, "test_error_mean"), yerr=_ok(sim, "test_error_std"),
                **style.ERRORBAR, color=col, mfc=col)
    ref = np.interp(sim["alpha"], th["alpha"], _ok(th, "test_error"))
    rel = (_ok(sim, "test_error_mean").values - ref) / ref
    if not np.isfinite(rel).any():
        return None
    return f"{tag}: {100 * np.nanmin(rel):+.0f}% … {100 * np.nanmax(rel):+.0f}%"


def _simulations_note(ax, sim, notes) -> None:
    """The simulations' legend entry (black) and the simulation − theory ranges."""
    if sim is not None:
        ax.errorbar([], [], yerr=[], **style.ERRORBAR, color="k",
                    label=style.simulation_label(meta(sim).param("d"), sim.sizes["seed"]))
    ax.text(0.99, 0.62, "simulation − theory, over α:\n" + "\n".join(n for n in notes if n),
            transform=ax.transAxes, ha="right", va="top", fontsize=style.NOTE_SIZE)

def onestep_second_layer(results: dict[str, xr.Dataset], size: dict):
    """Test error vs α after one giant step with a constant or a Gaussian second layer during
    the step, one panel per network: theory lines, simulations mean ± std, and each curve's
    simulation − theory range."""
    cases = sorted({k.split("_")[1] for k in results if k.startswith("theory_")})
    fig = style.new_figure((style.FIGSIZE[0] * len(cases), style.FIGSIZE[1]))
    axes = np.atleast_1d(fig.subplots(1, len(cases)))
    sim = None
    for ax, case in zip(axes, cases, strict=True):
        notes, prm = [], {}
        for i, a_init in enumerate(("constant", "gaussian")):
            th = _first_lam(results[f"theory_{case}_{a_init}"])
            sim = _first_lam(results[f"simulation_{case}_{a_init}"])
            prm = meta(th).params
            name = "a_j = 1 (Cui et al.)" if a_init == "constant" else "a_j ~ N(0, 1)"
            notes.append(_theory_beside_simulation(ax, th, sim, style.colour(i), name, name))
        style.decorate(ax, x=style.axis_label("alpha"), y=style.y_label("onestep"),
                       title=f"{prm.get('student')} network, {prm.get('teacher')} target, "
                             "α₀ = 2, η̃ = 1")
        _simulations_note(ax, sim, notes)
        style.legend(ax)
    _failed_note(axes[-1], results)
    return fig

def deviations(th: xr.Dataset, sim: xr.Dataset) -> dict[float, tuple[float, float]]:
    """η̃ → the smallest and largest (simulation − theory)/theory over the simulated α."""
    out = {}
    for eta in sim["eta"].values:
        if eta not in th["eta"].values:
            continue
        s = sim.sel(eta=eta)
        theory = np.interp(s["alpha"], th["alpha"], _ok(th.sel(eta=eta), "test_error"))
        rel = (_ok(s, "test_error_mean").values - theory) / theory
        if np.isfinite(rel).any():
            out[float(eta)] = (float(np.nanmin(rel)), float(np.nanmax(rel)))
    return out


def _deviation_note(th: xr.Dataset, sim: xr.Dataset) -> str:
    """One line per η̃: how far the simulations sit from the d = ∞ theory."""
    lines = [f"η̃ = {eta:g}: {100 * lo:+.0f}% … {100 * hi:+.0f}%"
             for eta, (lo, hi) in deviations(th, sim).items()]
    return "simulation − theory, over α:\n" + "\n".join(lines)


def validity_gaps(th: xr.Dataset, sim: xr.Dataset) -> xr.Dataset:
    """Per η̃ of the simulation: ``noise_ratio`` η̃²/α0 (from the theory), ``gap`` =
    (simulation mean − theory)/theory of the test error and ``se`` = the s.e. of the simulation
    mean over seeds (std/√seeds) over the theory; one α (the first)."""
    th, sim = _first_lam(th).isel(alpha=0), _first_lam(sim).isel(alpha=0)
    etas = [e for e in sim["eta"].values if e in th["eta"].values]
    t, s = th.sel(eta=etas), sim.sel(eta=etas)
    theory = _ok(t, "test_error")
    return xr.Dataset({
        "noise_ratio": t["noise_ratio"],
        "gap": (_ok(s, "test_error_mean") - theory) / theory,
        "se": _ok(s, "test_error_std") / np.sqrt(sim.sizes["seed"]) / theory})


def onestep_validity(results: dict[str, xr.Dataset], size: dict):
    """(simulation − d = ∞ theory)/theory vs η̃²/α0, one series per case, ± 1 s.e.; zero line.
    Filled markers: the spiked surrogate; open markers, dashed: the step's own bulk (when the
    results hold ``stepbulk_CASE``)."""
    fig = style.new_figure()
    ax = fig.subplots()
    ax.axhline(0.0, color="k", lw=0.8)
    notes, sim = [], None
    cases = [k.removeprefix("theory_") for k in results if k.startswith("theory_")]
    for i, case in enumerate(cases):
        th, sim = results[f"theory_{case}"], results[f"simulation_{case}"]
        prm = meta(th).params
        col = style.colour(i)
        name = f"{prm['student']}/{prm['teacher']}, α₀ = {prm['alpha0']:g}"
        for bulk, key in (("surrogate", f"theory_{case}"), ("step bulk", f"stepbulk_{case}")):
            if key not in results:
                continue
            g = validity_gaps(results[key], sim)
            step = bulk == "step bulk"
            ax.errorbar(g["noise_ratio"], 100 * g["gap"], yerr=100 * g["se"], **style.ERRORBAR,
                        color=col, mfc="white" if step else col, ls="--" if step else "-",
                        label=f"{name}, {bulk}")
            last = g.isel(eta=-1)
            notes.append(f"{prm['student']}/{prm['teacher']}, {bulk}: "
                         f"{100 * float(last['gap']):+.1f}% ± {100 * float(last['se']):.1f}%")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.9 * (hi - lo))  # room for the note and legend above the points
    ax.set_xscale("log")
    ticks = [x for x in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if
             ax.get_xlim()[0] <= x <= ax.get_xlim()[1]]
    ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
    ax.minorticks_off()
    d = meta(sim).param("d") if sim is not None else "?"
    seeds = sim.sizes["seed"] if sim is not None else 0
    style.decorate(ax, x="η̃²/α₀   (strength of the step's noise part)",
                   y="(simulation − theory) / theory   (%)",
                   title=f"d = ∞ theories vs simulation at d = {d}, α = 2, λ = 0.01\n"
                         f"error bars: ± 1 s.e. of the mean over {seeds} seeds")
    eta = float(sim["eta"].values[-1]) if sim is not None else float("nan")
    ax.text(0.01, 0.99, f"network/target at the largest η̃ = {eta:g}:\n" + "\n".join(notes),
            transform=ax.transAxes, ha="left", va="top", fontsize=style.NOTE_SIZE)
    _failed_note(ax, results)
    style.legend(ax, loc="upper right")
    return fig


def predicted_degrees(student: str, zeta: np.ndarray, a_init: str, top: int = 6) -> np.ndarray:
    """The limit's count of emerging degrees ≤ ``top`` at each ζ (NaN on a threshold)."""
    from twolayer.errors import TwolayerError
    from twolayer.onestep.growing import emerging_degrees

    out = np.full(len(zeta), np.nan)
    for i, z in enumerate(zeta):
        try:
            out[i] = sum(k <= top for k in emerging_degrees(student, float(z), a_init))
        except TwolayerError:
            pass
    return out


def onestep_growing(results: dict[str, xr.Dataset], size: dict):
    """Left: degrees captured by the feature spikes vs ζ (simulation, limit count); right: test
    error vs ζ (simulation ± 1 s.e., the limit as one step per interval of ζ, RF)."""
    from twolayer.onestep import theory
    from twolayer.onestep.growing import orders, threshold

    fig = style.new_figure((style.FIGSIZE[0] * 2, style.FIGSIZE[1]))
    left, right = fig.subplots(1, 2)
    sim = None
    for i, a_init in enumerate(("gaussian", "constant")):
        col = style.colour(i)
        sim = _first_lam(results[f"simulation_{a_init}"]).isel(alpha=0)
        prm = meta(sim).params
        z = sim["eta_exponent"].values
        n = sim.sizes["seed"]
        deg = sim["feature_degrees"].where(ok_mask(sim))
        left.errorbar(z, deg.mean("seed"), yerr=deg.std("seed", ddof=1) / np.sqrt(n),
                      **style.ERRORBAR, color=col, mfc=col,
                      label=f"simulation, a {a_init}")
        fine = np.linspace(1e-4, 0.4999, 2000)
        left.plot(fine, predicted_degrees(prm["student"], fine, a_init), **style.THEORY,
                  color=col, label=f"limit d = ∞, a {a_init} (degrees ≤ 6)")
        te = _ok(sim, "test_error")
        right.errorbar(z, te.mean("seed"), yerr=te.std("seed", ddof=1) / np.sqrt(n),
                       **style.ERRORBAR, color=col, mfc=col, label=f"simulation, a {a_init}")
        th = _first_lam(results[f"theory_{a_init}"]).isel(alpha=0)
        for j, zt in enumerate(th["eta_exponent"].values):
            ell = orders(zt)
            lo, hi = threshold(ell), threshold(ell + 1)
            right.plot([lo, hi], [float(_ok(th, "test_error")[j])] * 2, **style.THEORY,
                       color=col, label=f"limit d = ∞, a {a_init}" if j == 0 else None)
    if sim is not None:
        prm = meta(sim).params
        rf = float(theory(student=prm["student"], teacher=prm["teacher"], eta=0.0,
                          alpha=[prm["alpha"][0]], lam=prm["lam"])["test_error"][0, 0])
        right.axhline(rf, **style.RF, color=style.RF_COLOUR, label="random features (no step)")
    for ax in (left, right):
        for k in range(1, 8):
            ax.axvline(threshold(k), color="0.85", lw=0.6, zorder=0)
    d = meta(sim).param("d") if sim is not None else "?"
    seeds = sim.sizes["seed"] if sim is not None else 0
    style.decorate(left, x="ζ   (η̃ = 4·d^(ζ − ½))", y="Hermite degrees in the feature spikes",
                   title=f"relu network and target, α₀ = 1: d = {d}, {seeds} seeds\n"
                         "grey: thresholds ζ = (k − 1)/2k")
    style.decorate(right, x="ζ   (η̃ = 4·d^(ζ − ½))", y="test error at α = 2, λ = 0.01",
                   title="test error; error bars ± 1 s.e. of the mean")
    _failed_note(right, results)
    for ax in (left, right):  # room above the points for the legends
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + 0.45 * (hi - lo))
    style.legend(left, loc="upper left")
    style.legend(right, loc="upper right", ncol=2)
    return fig


def onestep_alignment(results: dict[str, xr.Dataset], size: dict):
    """Spike overlap with the teacher vs α0: theory γ(α0) and simulations per η̃."""
    from twolayer.onestep import step_map

    sim = results["simulation"].isel(alpha=0, lam=0)
    prm = meta(sim).params
    a0 = sim["alpha0"].values
    grid = np.geomspace(a0.min() / 1.5, a0.max() * 1.5, 200)
    theory = [step_map(prm["student"], prm["teacher"], a, 1.0, prm["noise"]).alignment
              for a in grid]
    fig = style.new_figure()
    ax = fig.subplots()
    ax.plot(grid, theory, **style.THEORY, color="k",
            label="theory γ = μ1⋆ / ‖g‖ (any η̃ > 0)")
    o = _ok(sim, "spike_overlap")  # W1 − W0 = η̃·G: the same direction for every η̃
    ax.errorbar(a0, o.mean("seed"), yerr=o.std("seed", ddof=1), **style.ERRORBAR,
                color=style.colour(0),
                label=f"simulation, η̃ = {prm['eta']:g} (any η̃ gives this direction)")
    ax.set_xscale("log")
    ticks = [x for x in (0.1, 0.2, 0.5, 1, 2, 5, 10) if grid[0] <= x <= grid[-1]]
    ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
    ax.minorticks_off()
    ax.set_ylim(0, 1)
    style.decorate(ax, x=style.axis_label("alpha0"), y=style.Y_LABEL["spike_overlap"],
                   title=f"{prm['student']} network, {prm['teacher']} target; "
                         f"{style.simulation_label(prm['d'], sim.sizes['seed'])}",
                   log_grid=True)
    _failed_note(ax, results)
    style.legend(ax, loc="lower right")
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

    th = results["theory"]
    prm = meta(th).params
    gap = gap_to_rf(th).transpose("alpha0", "eta")
    fig = style.new_figure()
    ax = fig.subplots()
    lim = float(np.nanmax(np.abs(gap.values))) or 1.0
    mesh = ax.pcolormesh(gap["eta"], gap["alpha0"], gap.values, shading="nearest",
                         cmap="RdBu", norm=TwoSlopeNorm(0.0, -lim, lim))
    step = gap.sel(eta=gap["eta"] > 0)  # η̃ = 0 is RF itself: gap ≡ 0 there
    if step.sizes["eta"] > 1 and np.nanmin(step.values) < 0 < np.nanmax(step.values):
        ax.contour(step["eta"], step["alpha0"], step.values, levels=[0.0], colors="k",
                   linewidths=0.8)
        ax.plot([], [], color="k", lw=0.8, label="zero gap: E_RF = E_one step")
        style.legend(ax, loc="lower right", frameon=True, framealpha=0.85)
    cbar = fig.colorbar(mesh, ax=ax)
    cbar.set_label("E_RF − E_one step   (> 0: the step helps)", fontsize=style.LABEL_SIZE)
    cbar.ax.tick_params(labelsize=style.TICK_SIZE)
    ax.set_yscale("log")
    style.decorate(ax, x=style.axis_label("eta"), y=style.axis_label("alpha0"),
                   title=f"d = ∞ theory, {prm['student']}/{prm['teacher']}, α = "
                         f"{th['alpha'].item():g}, λ = {th['lam'].item():g}", grid=False)
    _failed_note(ax, results)
    return fig


# ------------------------------------------------------------------------------ SGD
_PANELS = (("classical", "classical_ode", "classical_sim", "classical_flow"),
           ("high-dimensional", "highdim_ode", "highdim_sim", "highdim_flow"),
           ("mean-field", "meanfield_ode", "meanfield_sim", None))


def sgd_regimes(results: dict[str, xr.Dataset], size: dict):
    """One log-log panel per regime: ODE line, simulation mean ± std band, gradient flow."""
    fig = style.new_figure(style.panels_figsize(3))
    axes = fig.subplots(1, 3)
    for ax, (title, ode_name, sim_name, flow_name) in zip(axes, _PANELS, strict=True):
        _regime_panel(ax, title, results[ode_name], results[sim_name],
                      results[flow_name] if flow_name is not None else None)
    axes[0].set_ylabel(style.y_label("sgd"), fontsize=style.LABEL_SIZE)
    _failed_note(axes[-1], results)
    return fig


def ode_deviation(ode: xr.Dataset, sim: xr.Dataset) -> tuple[float, float]:
    """Worst |ODE − SGD mean| over the simulation's times t > 0: in standard errors of the mean
    (std/√seeds) and relative to the mean; the ODE interpolated in log t."""
    t, t_ode = sim["t"].values, ode["t"].values
    keep = t > 0
    theory = np.interp(np.log(t[keep]), np.log(t_ode[1:]), _ok(ode, "risk").values[1:])
    mean = _ok(sim, "risk_mean").values[keep]
    se = _ok(sim, "risk_std").values[keep] / np.sqrt(sim.sizes["seed"])
    gap = np.abs(theory - mean)
    return float(np.nanmax(gap / se)), float(np.nanmax(gap / mean))


def sgd_meanfield(results: dict[str, xr.Dataset], size: dict):
    """The mean-field example at d = 3: closure ODE line, SGD mean ± std band, log-log."""
    fig = style.new_figure()
    ax = fig.subplots()
    ode, sim = results["ode"], results["simulation"]
    _regime_panel(ax, "mean-field example, d = 3", ode, sim, None)
    z, rel = ode_deviation(ode, sim)
    ax.text(0.99, 0.99, f"ODE vs SGD mean: at most {z:.2g} s.e. ({100 * rel:.2g}%)",
            transform=ax.transAxes, ha="right", va="top", fontsize=style.NOTE_SIZE)
    ax.set_ylabel(style.y_label("sgd"), fontsize=style.LABEL_SIZE)
    _failed_note(ax, results)
    return fig


_ODE_FLOOR = 1e-10  # the ODE's absolute tolerance: risks below it are solver noise


def _regime_panel(ax, title: str, ode: xr.Dataset, sim: xr.Dataset,
                  flow: xr.Dataset | None) -> None:
    from twolayer.sgd.regimes import classify

    prm = meta(sim).params
    t = sim["t"].values
    keep = t > 0
    mean, std = _ok(sim, "risk_mean").values, _ok(sim, "risk_std").values
    lo, hi = style.band_limits(mean, std)
    ax.fill_between(t[keep], lo[keep], hi[keep], color=style.SIMULATION_COLOUR,
                    alpha=style.BAND_ALPHA, lw=0)
    ax.plot(t[keep], mean[keep], **style.MARKER, color=style.SIMULATION_COLOUR,
            label=style.simulation_label(prm["d"], sim.sizes["seed"], name="SGD"))
    status = point_status(ode)
    tt = ode["t"].values
    reduction = ode.attrs.get("reduction", meta(ode).param("reduction"))
    name = {"wide": "reduced ODE (p → ∞)", "quadratic": "ODE: exact closure in (m, WᵀW/p)"
            }.get(reduction, style.CURVE_NAME["ode"])
    ax.plot(tt[tt > 0], _ok(ode, "risk").values[tt > 0], **style.THEORY,
            color=style.THEORY_COLOUR, label=name + ("" if status == "ok" else f" ({status})"))
    if flow is not None:
        tf = flow["t"].values
        ax.plot(tf[tf > 0], _ok(flow, "risk").values[tf > 0], **style.FLOW,
                label="gradient flow (no variance term)")
    reg = classify(prm["d"], prm["p"], prm["gamma"])
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.nanmax(std[keep] / mean[keep]) if keep.any() else np.nan
    note = (f"SGD to t = {t[-1]:.3g}; its ± std band is at most {100 * spread:.2g}% of the "
            "mean" if np.isfinite(spread) else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    if ax.get_ylim()[0] < _ODE_FLOOR:  # below the solver's absolute tolerance: noise
        ax.set_ylim(bottom=_ODE_FLOOR)
    style.decorate(ax, x=style.axis_label("t"), log_grid=True,
                   title=f"{title}: p = {prm['p']}, k = {prm['k']}, γ = {prm['gamma']:g}, "
                         f"Δ = {prm['noise']:g}\n(γ/p = {prm['gamma'] / prm['p']:.3g}; "
                         f"classified: {reg.name})")
    style.legend(ax, loc="lower left", title=note)


PHASES = ("classical", "mean-field", "high-dimensional", "mixed", "variance-dominated", "no-ODE")


def phase_map(kappa: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Index into :data:`PHASES` of the regime at each (δ, κ) (rows δ, columns κ)."""
    from twolayer.sgd.regimes import classify_exponents

    return np.array([[PHASES.index(classify_exponents(k, d).name) for k in kappa]
                     for d in delta])


def sgd_phases(results: dict[str, xr.Dataset], size: dict):
    """Regimes over (δ, κ) with p ∝ d^κ, γ ∝ d^(−δ), oriented and named as in Veiga et al.
    2022 (δ across, κ up); the limits of Arnaboldi et al. 2023 in the legend; the authors'
    no-ODE edge δ = −(1 + κ)/2 dotted beside the package's κ + δ = −½."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    n = int(size["n"])
    kappa = np.linspace(0.0, 1.5, n)
    delta = np.linspace(-2.0, 1.0, n)
    idx = phase_map(kappa, delta).T  # rows κ, columns δ
    colors = ["#a1d99b", "#74c476", "#3182bd", "#6baed6", "#fdae6b", "#ef8a8a"]
    fig = style.new_figure((style.FIGSIZE[0], style.FIGSIZE[1] * 1.45))
    ax = fig.subplots()
    ax.pcolormesh(delta, kappa, idx, shading="nearest", cmap=ListedColormap(colors),
                  vmin=-0.5, vmax=len(PHASES) - 0.5)
    # the regimes on lines (zero area on the grid): classical κ = 0, δ > 0; plateau κ + δ = 0
    ax.plot([0, delta[-1]], [0, 0], "-", color=colors[0], lw=6, solid_capstyle="butt")
    ax.plot(-kappa, kappa, "-", color=colors[3], lw=2.5)
    ax.plot(-kappa - 0.5, kappa, "-", color="0.3", lw=1)
    ax.plot(-(1 + kappa) / 2, kappa, ":", color="0.1", lw=1.2,
            label="the authors' no-ODE edge δ = −(1 + κ)/2")
    ax.plot([0], [0], "o", color=colors[2], ms=7)
    # checked by simulation (twolayer.sgd.regimes docstring): one step's move of Q_jj vanishes here
    ax.plot([-1.25], [1.0], "*", color="k", ms=9,
            label="SGD simulated at κ = 1, δ = −1.25: one step's move of Q_jj → 0 (ODE holds)")
    ax.annotate("Saad & Solla\n(p, γ fixed)", (0, 0), (0.2, 0.12), fontsize=style.LEGEND_SIZE,
                arrowprops={"arrowstyle": "-", "lw": 0.5})
    labels = {"classical": "perfect learning — classical (κ = 0, δ > 0)",
              "mean-field": "perfect learning — mean-field (κ > 0, κ + δ > 0)",
              "high-dimensional": "plateau — high-dimensional (κ = δ = 0)",
              "mixed": "plateau — mixed (κ + δ = 0, κ > 0)",
              "variance-dominated": "bad learning — variance-dominated (−½ < κ + δ < 0)",
              "no-ODE": "no ODE (κ + δ ≤ −½)"}
    handles = [Patch(color=c, label=labels[name]) for c, name in zip(colors, PHASES,
                                                                       strict=True)]
    handles += ax.get_legend_handles_labels()[0]
    style.legend(ax, handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=1)
    ax.set_xlim(delta[0], delta[-1])
    ax.set_ylim(kappa[0] - 0.02, kappa[-1])  # the classical line κ = 0 fully visible
    style.decorate(ax, x="δ   (learning rate γ ∝ d^(−δ))", y="κ   (width p ∝ d^κ)",
                   title="one-pass SGD of committee machines: which limit applies", grid=False)
    return fig


def _failed_note(ax, results: dict[str, xr.Dataset]) -> None:
    bad = {name: failed_count(ds) for name, ds in results.items() if failed_count(ds)}
    if bad:
        text = ", ".join(f"{n}: {c}" for n, c in bad.items())
        ax.text(0.01, 0.01, f"failed points left out — {text}", transform=ax.transAxes,
                fontsize=style.NOTE_SIZE, color=style.FAIL_COLOUR, va="bottom")
