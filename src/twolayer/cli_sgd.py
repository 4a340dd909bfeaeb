"""``twolayer sgd …``: the committee-machine ODEs and simulations (thin: parse, call, print)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from twolayer import __version__
from twolayer.cli import (
    Json,
    Noise,
    Out,
    Overwrite,
    Plot,
    Seed,
    Student,
    Teacher,
    UserError,
    _prepare_outputs,
)

sgd_app = typer.Typer(
    help="One-pass SGD of committee machines, after Arnaboldi et al. 2023: ODEs and simulation",
    no_args_is_help=True,
)

P = Annotated[int, typer.Option("--p", help="Student width p.")]
K = Annotated[int, typer.Option("--k", help="Teacher width k.")]
D = Annotated[int, typer.Option("--d", help="Input dimension d (draws the initial overlaps).")]
Gamma = Annotated[float, typer.Option(help="SGD learning rate γ (the step is (γ/p)·grad).")]
TMax = Annotated[float, typer.Option("--t-max", help="Final time t = ν·γ/(p·d).")]
InitScale = Annotated[float, typer.Option("--init-scale",
                                          help="Std of the student's initial weights.")]
Spherical = Annotated[bool, typer.Option("--spherical", help="Keep every ‖w_j‖² = d.")]
Init = Annotated[str | None, typer.Option(
    "--init", help="JSON file with keys Q, M, P (nested lists): start exactly there.")]


def _load_init(path):
    if path is None:
        return None
    from twolayer.sgd.init import load_overlaps

    return load_overlaps(path)


def _check_sizes(p, k, init):
    if init is not None and (init.p != p or init.k != k):
        raise UserError(f"--init: the overlaps are for p={init.p}, k={init.k}; "
                        f"the command asks p={p}, k={k}")


def _title(student, teacher, p, k, gamma, noise):
    return f"σ={student}, σ⋆={teacher}, p={p}, k={k}, γ={gamma:g}, Δ={noise:g}"


@sgd_app.command("ode")
def sgd_ode(
    student: Student = "erf",
    teacher: Teacher = "erf",
    p: P = 2,
    k: K = 2,
    d: D = 1000,
    gamma: Gamma = 0.5,
    noise: Noise = 0.0,
    t_max: TMax = 100.0,
    seed: Seed = 0,
    init_scale: InitScale = 1.0,
    spherical: Spherical = False,
    init: Init = None,
    variance: Annotated[bool, typer.Option(
        "--variance/--no-variance",
        help="Keep the (γ/p) SGD-variance term (off: gradient flow).")] = True,
    method: Annotated[str, typer.Option(
        help="auto, BDF, LSODA, RK45, DOP853, Radau or euler (fixed step --dt).")] = "auto",
    dt: Annotated[float, typer.Option(help="Step of --method euler.")] = 1e-3,
    wide: Annotated[bool, typer.Option(
        "--wide", help="Large-width reduced ODE in (M, q): cost ∝ p (for p ≳ 50).")] = False,
    out: Out = None,
    plot: Plot = None,
    json_: Json = False,
    overwrite: Overwrite = False,
) -> None:
    """Integrate the overlap ODEs; the start is the overlaps `sgd simulate` draws (or --init).

    With --wide: the reduced ODE of twolayer.sgd.wide (Q = M P⁻¹Mᵀ + diag(q)); the JSON then
    gives M and q at t_max instead of M and Q.
    """
    from twolayer.sgd import ode, ode_wide

    ov = _load_init(init)
    _check_sizes(p, k, ov)
    _prepare_outputs(out, plot, overwrite)
    t0 = time.perf_counter()
    solve = ode_wide if wide else ode
    res = solve(student, teacher, p=p, k=k, gamma=gamma, t_max=t_max, noise=noise, d=d,
                seed=seed, init_scale=init_scale, init=ov, variance=variance,
                spherical=spherical, method=method, dt=dt)
    elapsed = time.perf_counter() - t0
    if out:
        from twolayer.io import save_netcdf

        save_netcdf(res, out, overwrite=overwrite)
    if plot:
        from twolayer.plotting import plot_sgd

        plot_sgd(plot, ode=res, title=_title(student, teacher, p, k, gamma, noise))
    if json_:
        _print_json({"t": res["t"].values, "risk": res["risk"].values,
                     "status": res.attrs["status"], "t_stop": res.attrs["t_stop"],
                     "M": res["M"].values[-1],
                     **({"q": res["q"].values[-1]} if wide else {"Q": res["Q"].values[-1]})},
                    res, elapsed)
        return
    _print_curve(res["t"].values, {"ODE risk": res["risk"].values},
                 f"SGD ODE ({res.attrs['status']}): {_title(student, teacher, p, k, gamma, noise)}",
                 elapsed)


@sgd_app.command("simulate")
def sgd_simulate(
    student: Student = "erf",
    teacher: Teacher = "erf",
    p: P = 2,
    k: K = 2,
    d: D = 1000,
    gamma: Gamma = 0.5,
    noise: Noise = 0.0,
    t_max: TMax = 10.0,
    seed: Seed = 0,
    seeds: Annotated[int, typer.Option(help="Runs (same start, independent data).")] = 4,
    init_scale: InitScale = 1.0,
    spherical: Spherical = False,
    init: Init = None,
    float32: Annotated[bool, typer.Option("--float32", help="Weights and inputs in float32.")]
    = False,
    ode_: Annotated[bool, typer.Option(
        "--ode/--no-ode", help="Also integrate the ODE from the same start.")] = True,
    out: Out = None,
    plot: Plot = None,
    json_: Json = False,
    overwrite: Overwrite = False,
) -> None:
    """Simulate one-pass SGD over seeds (batched), beside the ODE from the same overlaps."""
    from twolayer.sgd import ode, simulate
    from twolayer.sgd.init import initial_overlaps

    ov = _load_init(init)
    _check_sizes(p, k, ov)
    _prepare_outputs(out, plot, overwrite)
    t0 = time.perf_counter()
    sim = simulate(student, teacher, p=p, k=k, d=d, gamma=gamma, t_max=t_max, noise=noise,
                   seeds=seeds, seed=seed, init_scale=init_scale, spherical=spherical, init=ov,
                   float32=float32)
    elapsed = time.perf_counter() - t0
    th = None
    if ode_ or plot:
        start = ov if ov is not None else initial_overlaps(p, k, d, seed, init_scale, spherical)
        th = ode(student, teacher, gamma=gamma, t_max=t_max, noise=noise, init=start,
                 spherical=spherical)
    if out:
        from twolayer.io import save_netcdf

        save_netcdf(sim, out, overwrite=overwrite)
    if plot:
        from twolayer.plotting import plot_sgd

        plot_sgd(plot, ode=th, simulation=sim,
                 title=_title(student, teacher, p, k, gamma, noise) + f", d={d}")
    if json_:
        obj = {"t": sim["t"].values, "risk": sim["risk_mean"].values,
               "risk_std": sim["risk_std"].values, "risk_seeds": sim["risk"].values,
               "diverged_at": sim["diverged_at"].values,
               "us_per_step_per_run": sim.attrs["us_per_step_per_run"]}
        if th is not None:
            obj["ode_risk"] = th["risk"].interp(t=sim["t"].values).values
            obj["ode_status"] = th.attrs["status"]
        _print_json(obj, sim, elapsed)
        return
    cols = {"simulation": sim["risk_mean"].values, "± std": sim["risk_std"].values}
    if th is not None:
        cols["ODE"] = th["risk"].interp(t=sim["t"].values).values
    _print_curve(sim["t"].values, cols,
                 f"SGD simulation, {sim.sizes['seed']} seeds, d={d}: "
                 + _title(student, teacher, p, k, gamma, noise), elapsed)


def _print_json(obj, ds, elapsed):
    from twolayer.io import dumps

    obj.update({"params": json.loads(ds.attrs["params"]), "version": __version__,
                "seconds": elapsed})
    print(dumps(obj))


def _print_curve(t, columns, title, elapsed, rows: int = 12):
    """A table of the curve at ~``rows`` log-spaced times."""
    import numpy as np

    from twolayer.cli import _table

    idx = np.unique(np.linspace(0, len(t) - 1, rows).round().astype(int))
    cols = {"t": [float(t[i]) for i in idx]}
    cols.update({name: [float(v[i]) for i in idx] for name, v in columns.items()})
    _table(cols, title)
    print(f"[{elapsed:.2f} s]")


@sgd_app.command("regimes")
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
        from twolayer.io import dumps

        print(dumps({**reg.as_dict(), "params": given, "version": __version__}))
        return
    print(f"regime: {reg.name}\n  {reg.description}\n"
          f"  SGD steps per unit of t: {reg.steps_per_unit_time}\n"
          f"  weight of the (γ/p) variance term: {reg.variance_weight}\n"
          f"  surviving terms: {'; '.join(reg.terms) or 'none (no ODE)'}")
