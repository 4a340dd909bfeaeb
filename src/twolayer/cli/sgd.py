"""``twolayer sgd ode|simulate|regimes``: one-pass SGD of committee machines (Arnaboldi et al.
2023)."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from twolayer.cli.common import (
    Json,
    Out,
    Overwrite,
    Plot,
    UserError,
    check_outputs,
    emit_json,
    finish,
    params_command,
    save_result,
    status_line,
    table,
)
from twolayer.params import SgdOde, SgdSimulate

app = typer.Typer(
    help="One-pass SGD of committee machines, after Arnaboldi et al. 2023: ODEs and simulation",
    no_args_is_help=True,
)


def _title(prm) -> str:
    return (f"σ={prm.student}, σ⋆={prm.teacher}, p={prm.p}, k={prm.k}, γ={prm.gamma:g}, "
            f"Δ={prm.noise:g}")


def _with_overlaps(prm):
    """The parameters with an ``--init`` file loaded (sizes checked against --p --k)."""
    return prm if prm.init is None else prm.replace(init=prm.overlaps())


def _curve(t, columns, title, elapsed, rows: int = 12) -> None:
    """A table of the curve at ~``rows`` times spread over the grid."""
    import numpy as np

    idx = np.unique(np.linspace(0, len(t) - 1, rows).round().astype(int))
    cols = {"t": [float(t[i]) for i in idx]}
    cols.update({name: [float(v[i]) for i in idx] for name, v in columns.items()})
    table(cols, title)
    print(f"[{elapsed:.2f} s]")


@app.command("ode")
@params_command(SgdOde)
def sgd_ode(prm: SgdOde, out: Out = None, plot: Plot = None, json_: Json = False,
            overwrite: Overwrite = False) -> None:
    """Integrate the overlap ODEs; the start is the overlaps `sgd simulate` draws (or --init).

    With --reduction wide (automatic above p = 64 at d ≥ 100): the large-width reduction in
    (M, q); the JSON then gives M and q at t_max instead of M and Q. With --reduction quadratic
    (automatic above p = 64 at d < 100 for degree ≤ 2 activations): the exact closure in
    m = mean_j w_j and S = WᵀW/p; the JSON gives m and S at t_max. With --gamma-a > 0 the JSON
    adds the second layer's trajectory a (t, j).
    """
    from twolayer.sgd import ode

    check_outputs(out, plot, overwrite)
    t0 = time.perf_counter()
    res = ode(_with_overlaps(prm))
    elapsed = time.perf_counter() - t0
    save_result(res, out, overwrite)
    if plot:
        from twolayer.plotting import plot_sgd

        plot_sgd(plot, ode=res, title=_title(prm))
    if json_:
        names = (("m", "S") if "S" in res else ("M", "q") if "q" in res else ("M", "Q"))
        second = {"a": res["a"].values} if "a" in res else {}  # the second layer (t, j)
        extra = {k: res.attrs[k] for k in ("variance_rel_se", "finite_d") if k in res.attrs}
        emit_json({"t": res["t"].values, "risk": res["risk"].values,
                   "t_stop": res.attrs["t_stop"], "reduction": res.attrs["reduction"],
                   **{n: res[n].values[-1] for n in names}, **second, **extra}, res, elapsed)
        finish(res.attrs["status"])
        return
    _curve(res["t"].values, {"ODE risk": res["risk"].values},
           f"SGD ODE ({res.attrs['reduction']}, {res.attrs['status']}): {_title(prm)}", elapsed)
    if "variance_rel_se" in res.attrs:
        print(f"variance term sampled ({prm.variance_samples} samples): relative standard "
              f"error {res.attrs['variance_rel_se']:.2g} at the start")
    status_line(res)
    finish(res.attrs["status"])


@app.command("simulate")
@params_command(SgdSimulate)
def sgd_simulate(
    prm: SgdSimulate,
    ode_: Annotated[bool, typer.Option(
        "--ode/--no-ode", help="Also integrate the ODE from the same start.")] = True,
    out: Out = None,
    plot: Plot = None,
    json_: Json = False,
    overwrite: Overwrite = False,
) -> None:
    """Simulate one-pass SGD over seeds (batched), beside the ODE from the same overlaps."""
    from twolayer.errors import TwolayerError
    from twolayer.sgd import ode, simulate
    from twolayer.sgd.init import initial_overlaps

    check_outputs(out, plot, overwrite)
    prm = _with_overlaps(prm)
    t0 = time.perf_counter()
    sim = simulate(prm)
    elapsed = time.perf_counter() - t0
    th = None
    if ode_ or plot:
        start = prm.init if prm.init is not None else initial_overlaps(
            prm.p, prm.k, prm.d, prm.seed, prm.init_scale, prm.spherical)
        try:
            shared = {n: getattr(prm, n) for n in ("noise", "spherical", "d", "batch",
                                                   "gamma_a", "weight_decay", "schedule",
                                                   "schedule_t0", "schedule_beta",
                                                   "schedule_times", "schedule_factors")}
            th = ode(prm.student, prm.teacher, gamma=prm.gamma, t_max=prm.t_max, init=start,
                     **shared)
        except TwolayerError as e:  # e.g. no valid reduction at this (p, d): simulate anyway
            print(f"twolayer: warning: no ODE: {e}", file=sys.stderr)
    save_result(sim, out, overwrite)
    if plot:
        from twolayer.plotting import plot_sgd

        plot_sgd(plot, ode=th, simulation=sim, title=_title(prm) + f", d={prm.d}")
    if json_:
        obj = {"t": sim["t"].values, "risk": sim["risk_mean"].values,
               "risk_std": sim["risk_std"].values, "risk_seeds": sim["risk"].values,
               "diverged_at": sim["diverged_at"].values,
               "us_per_step_per_run": sim.attrs["us_per_step_per_run"]}
        if "a" in sim:  # the second layer's trajectory (seed, t, j)
            obj["a"] = sim["a"].values
        if th is not None:
            obj["ode_risk"] = th["risk"].interp(t=sim["t"].values).values
            obj["ode_status"] = th.attrs["status"]
            if "a" in th:
                obj["ode_a"] = th["a"].interp(t=sim["t"].values).values
        emit_json(obj, sim, elapsed)
        finish(sim.attrs["status"])
        return
    cols = {"simulation": sim["risk_mean"].values, "± std": sim["risk_std"].values}
    if th is not None:
        cols["ODE"] = th["risk"].interp(t=sim["t"].values).values
    _curve(sim["t"].values, cols,
           f"SGD simulation, {sim.sizes['seed']} seeds, d={prm.d}: {_title(prm)}", elapsed)
    status_line(sim)
    finish(sim.attrs["status"])


@app.command("regimes")
def sgd_regimes(
    d: Annotated[int | None, typer.Option("--d", help="Input dimension d.")] = None,
    p: Annotated[int | None, typer.Option("--p", help="Student width p.")] = None,
    gamma: Annotated[float | None, typer.Option(help="Learning rate γ.")] = None,
    kappa: Annotated[float | None, typer.Option(help="Width exponent: p ∝ d^κ.")] = None,
    delta: Annotated[float | None, typer.Option(help="Rate exponent: γ ∝ d^(−δ).")] = None,
    json_: Json = False,
) -> None:
    """Which limit applies (classical / high-dimensional / mean-field / mixed) and its terms.

    Give either --d --p --gamma (numbers) or --kappa --delta (exponents).
    """
    from twolayer.sgd.regimes import classify, classify_exponents

    numbers, exps = (d, p, gamma), (kappa, delta)
    if all(v is not None for v in exps) and all(v is None for v in numbers):
        reg = classify_exponents(kappa, delta)
        given = {"kappa": kappa, "delta": delta}
    elif all(v is not None for v in numbers) and all(v is None for v in exps):
        reg = classify(d, p, gamma)
        given = {"d": d, "p": p, "gamma": gamma}
    else:
        raise UserError("give either --d, --p and --gamma, or --kappa and --delta")
    if json_:
        emit_json({**reg.as_dict(), "params": given})
        return
    print(f"regime: {reg.name}\n  {reg.description}\n"
          f"  SGD steps per unit of t: {reg.steps_per_unit_time}\n"
          f"  weight of the (γ/p) variance term: {reg.variance_weight}\n"
          f"  surviving terms: {'; '.join(reg.terms) or 'none (no ODE)'}"
          + (f"\n  note: {reg.note}" if reg.note else ""))
