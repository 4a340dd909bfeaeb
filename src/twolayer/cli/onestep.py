"""``twolayer onestep theory|simulate``: one giant step, then a ridge readout (Cui et al. 2024)."""

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
from twolayer.params import OnestepSimulate, OnestepTheory

app = typer.Typer(
    help="One giant gradient step then a ridge readout, after Cui et al. 2024: "
    "theory and simulation",
    no_args_is_help=True,
)


def _by_lam(arr, n_lam):
    """1-d over α for a single λ, else α × λ nested lists."""
    return arr[:, 0] if n_lam == 1 else arr


def _dense(alphas: list[float], n: int = 60) -> list[float]:
    """A fine α grid over the requested range, for smooth theory lines in figures."""
    import numpy as np

    lo, hi = min(alphas), max(alphas)
    return sorted({*alphas, *np.linspace(lo, hi, n).tolist()}) if hi > lo else list(alphas)


def _dense_points(prm) -> int:
    """60 points; 16 for the theory after two Gaussian-a steps (κ ∈ R^4: ~3 s a point)."""
    return 16 if prm.a_init == "gaussian" and len(prm.steps) > 1 else 60


def _title(prm) -> str:
    a0, eta = (",".join(f"{v:g}" for v in x) for x in zip(*prm.steps, strict=True))
    lam = ",".join(f"{v:g}" for v in prm.lam)
    if prm.growing:
        zeta = ",".join(f"{v:g}" for v in prm.exponents)
        eta = f"{eta}·d^(ζ−½), ζ={zeta}"
    a = ", a gaussian" if prm.a_init == "gaussian" else ""
    sep = "\n" if prm.growing or a else " "  # a long title on two lines
    return (f"σ={prm.student}, σ⋆={prm.teacher}, α0={a0}, η̃={eta}{a},{sep}λ={lam}, "
            f"Δ={prm.noise:g}")


def _growing_line(prm, th) -> str:
    degrees = ", ".join(str(int(k)) for k in th.attrs["degrees"])
    return (f"growing step (eta ~ d^({prm.eta_exponent:g} - 1/2), a_init {prm.a_init}), limit "
            f"d = inf: the readout learns He_k(kappa) freely for k = {degrees}")


def _srf(th) -> dict:
    return {k: th.attrs[k] for k in ("bulk_scale", "bulk_shrink", "spike", "alignment")}


def _curves(prm: OnestepTheory, with_rf: bool):
    """Theory (and the RF baseline) on a dense α grid, for a figure."""
    from twolayer.onestep import rf_theory, theory

    dense = prm.replace(alpha=_dense(prm.alpha, _dense_points(prm)))
    return theory(dense), (rf_theory(dense) if with_rf else None)


@app.command("theory")
@params_command(OnestepTheory)
def onestep_theory(prm: OnestepTheory, out: Out = None, plot: Plot = None, json_: Json = False,
                   overwrite: Overwrite = False) -> None:
    """Spiked random-features theory of the test error vs α (RF baseline: --eta 0)."""
    from twolayer.onestep import theory

    check_outputs(out, plot, overwrite)
    t0 = time.perf_counter()
    th = theory(prm)
    elapsed = time.perf_counter() - t0
    th.attrs["seconds"] = elapsed
    save_result(th, out, overwrite)
    if plot:
        from twolayer.plotting import plot_onestep

        th_d, rf_d = _curves(prm, any(a0 > 0 and eta > 0 for a0, eta in prm.steps))
        plot_onestep(plot, theory=th_d, rf=rf_d, title=_title(prm))
    n_lam = th.sizes["lam"]
    if json_:
        emit_json({
            "alpha": th["alpha"].values, "lam": th["lam"].values,
            **{k: _by_lam(th[k].values, n_lam)
               for k in ("test_error", "train_error", "converged", "residual", "iterations")},
            "srf": _srf(th),
            "validity": {k: th.attrs[k] for k in ("noise_ratio", "noncentred")},
            **({"degrees": th.attrs["degrees"]} if "degrees" in th.attrs else {})}, th, elapsed)
        finish(th.attrs["status"])
        return
    for j, lam in enumerate(th["lam"].values):
        table({"alpha": [float(a) for a in th["alpha"].values],
               "test error": [float(v) for v in th["test_error"].values[:, j]],
               "train error": [float(v) for v in th["train_error"].values[:, j]],
               "converged": ["yes" if c else "NO" for c in th["converged"].values[:, j]]},
              f"one-step theory ({th.attrs['spectrum']}), λ={lam:g}")
    print("sRF: " + ", ".join(f"{k} {v:.4f}" for k, v in _srf(th).items())
          + f"  [{elapsed:.2f} s]")
    if "step" in th.dims:  # several steps: the recursion's state after each
        for t in range(th.sizes["step"]):
            print(f"  after step {t + 1}: spike {th['step_spike'].values[t]:.4f}, alignment "
                  f"{th['step_alignment'].values[t]:.4f}, bulk_scale "
                  f"{th['step_bulk_scale'].values[t]:.4f}, even_coupling "
                  f"{th['step_even_coupling'].values[t]:+.4f}")
    if "degrees" in th.attrs:
        print(_growing_line(prm, th))
    if th.attrs["noise_ratio"] > 0 and prm.bulk == "mp":
        print(f"validity: eta^2/alpha0 = {th.attrs['noise_ratio']:.3g} (the spiked model was "
              "measured 3% off at 2 and 6% at 8, tanh), c0 - 1 = "
              f"{th.attrs['noncentred']:.3g} (relu/tanh, -1/pi: 6% off at eta^2/alpha0 = 2); "
              "--bulk step closes both")
    status_line(th)
    finish(th.attrs["status"])


@app.command("simulate")
@params_command(OnestepSimulate)
def onestep_simulate(
    prm: OnestepSimulate,
    theory_: Annotated[bool, typer.Option(
        "--theory/--no-theory", help="Also give the d = inf theory.")] = True,
    theory_bulk: Annotated[str, typer.Option(
        "--theory-bulk", metavar="mp|step|post-step",
        help="The theory's bulk: 'mp' the spiked surrogate (Cui et al.), 'step' the step's own "
             "bulk at d = inf, 'post-step' the fixed point on each run's real W1 "
             "(finite d, any number of steps; the mean over the runs). 'step' and 'post-step' "
             "close the surrogate's gap at large eta²/alpha0.")] = "mp",
    out: Out = None,
    plot: Plot = None,
    json_: Json = False,
    overwrite: Overwrite = False,
) -> None:
    """Simulate the network (giant step + ridge readout) over seeds, beside the theory."""
    from twolayer.errors import TwolayerError
    from twolayer.onestep import simulate, theory

    check_outputs(out, plot, overwrite)
    if theory_bulk not in ("mp", "step", "post-step"):
        raise UserError(f"--theory-bulk must be 'mp', 'step' or 'post-step'; got {theory_bulk!r}")
    t0 = time.perf_counter()

    def progress(done, total):
        print(f"  run {done}/{total} done ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)

    sim = simulate(prm, progress=progress)
    elapsed = time.perf_counter() - t0
    sim.attrs["seconds"] = elapsed
    p = sim.attrs["p"]
    th = th_prm = th_d = None
    if theory_ or plot:
        try:  # the same model at d = inf and β = p/d
            th_prm = OnestepTheory.of({k: getattr(prm, k) for k in OnestepTheory.model_fields
                                       if k in OnestepSimulate.model_fields},
                                      beta=p / prm.d, d="inf",
                                      bulk="mp" if theory_bulk == "post-step" else theory_bulk)
            if theory_bulk == "post-step":
                th_d = _post_step_mean(prm.replace(alpha=_dense(prm.alpha) if plot
                                                   else prm.alpha))
                th = th_d.sel(alpha=prm.alpha)
            else:
                th = theory(th_prm)
        except TwolayerError as e:  # no spiked form: simulate anyway
            print(f"twolayer: warning: no theory: {e}", file=sys.stderr)
    save_result(sim, out, overwrite)
    if plot:
        from twolayer.plotting import plot_onestep

        stepped = any(a0 > 0 and eta > 0 for a0, eta in prm.steps)
        if th is None:
            rf_d = None
        elif th_d is not None:  # post-step: its own curve, the d = inf RF baseline
            rf_d = _curves(th_prm, True)[1] if stepped else None
        else:
            th_d, rf_d = _curves(th_prm, stepped)
        plot_onestep(plot, theory=th_d, simulation=sim, rf=rf_d,
                     title=_title(prm) + f", p={p}")
    _emit_simulation(prm, sim, th, json_, elapsed)


def _th_bulk(th) -> str:
    """The bulk a theory result was computed with ('mp', 'step' or 'post-step')."""
    import json

    if th.attrs.get("spectrum") == "post-step":
        return "post-step"
    return json.loads(th.attrs["params"]).get("bulk", "mp")


def _post_step_mean(prm: OnestepSimulate):
    """The post-step theory of every run, as one theory curve: the mean over the runs'
    errors, converged where every run's is, and the measured sRF parameters' means."""
    from twolayer.onestep import post_step_theory

    post = post_step_theory(prm)
    th = post[["test_error_mean"]].rename(test_error_mean="test_error")
    th["converged"] = post["converged"].all("seed")
    th.attrs.update(post.attrs)
    th.attrs.update({k: float(post[k].mean()) for k in ("bulk_scale", "spike", "alignment")})
    return th


def _feature_summary(sim) -> dict:
    """Seed means of the feature-spike diagnostics (NaN runs, without a step, left out)."""
    import numpy as np

    return {"sv": np.nanmean(sim["feature_sv"].values, axis=0),
            "edge": float(np.nanmean(sim["feature_edge"].values)),
            "captured": np.nanmean(sim["feature_captured"].values, axis=0),
            "degrees": float(np.nanmean(sim["feature_degrees"].values)),
            "degree": sim["degree"].values}


def _emit_simulation(prm, sim, th, json_: bool, elapsed: float) -> None:
    n_lam = sim.sizes["lam"]
    diag = {k: sim[k].values for k in ("spike_sv", "spike_overlap", "w1_overlap", "bulk_scale")}
    if json_:
        obj = {
            "alpha": sim["alpha"].values, "lam": sim["lam"].values,
            "test_error": _by_lam(sim["test_error_mean"].values, n_lam),
            "test_error_std": _by_lam(sim["test_error_std"].values, n_lam),
            "test_error_seeds": [_by_lam(x, n_lam) for x in sim["test_error"].values],
            "train_error": _by_lam(sim["train_error_mean"].values, n_lam),
            "diagnostics": diag, "p": sim.attrs["p"],
        }
        if th is not None:
            obj["theory_test_error"] = _by_lam(th["test_error"].values, n_lam)
            obj["theory_converged"] = _by_lam(th["converged"].values, n_lam)
            obj["theory_status"] = th.attrs["status"]
            obj["theory_bulk"] = _th_bulk(th)
            obj["srf"] = {k: th.attrs[k] for k in ("bulk_scale", "spike", "alignment")}
            if "degrees" in th.attrs:
                obj["theory_degrees"] = th.attrs["degrees"]
        if "feature_sv" in sim:
            obj["feature_spikes"] = _feature_summary(sim)
        emit_json(obj, sim, elapsed)
        finish(sim.attrs["status"])
        return
    for j, lam in enumerate(sim["lam"].values):
        cols = {
            "alpha": [float(a) for a in sim["alpha"].values],
            "simulation": [float(v) for v in sim["test_error_mean"].values[:, j]],
            "± std": [float(v) for v in sim["test_error_std"].values[:, j]],
        }
        if th is not None:
            name = {"mp": "theory (d=inf)", "step": "theory (d=inf, step bulk)",
                    "post-step": f"post-step theory (d={prm.d})"}[_th_bulk(th)]
            cols[name] = [float(v) for v in th["test_error"].values[:, j]]
        table(cols, f"one-step test error: d={prm.d}, p={sim.attrs['p']}, "
              f"{sim.sizes['seed']} seeds, λ={lam:g}")
    print("step diagnostics (mean over seeds): "
          + ", ".join(f"{k} {float(v.mean()):.4f}" for k, v in diag.items()))
    if th is not None:
        print("theory sRF: " + ", ".join(f"{k} {v:.4f}" for k, v in _srf(th).items()))
        if "degrees" in th.attrs:
            print(_growing_line(prm, th))
    if "feature_sv" in sim:
        f = _feature_summary(sim)
        print("feature spikes (mean over seeds): singular values "
              + ", ".join(f"{v:.3f}" for v in f["sv"]) + f" (random-features edge {f['edge']:.3f});"
              " part of He_k(kappa) in their span, k = 1..6: "
              + ", ".join(f"{v:.2f}" for v in f["captured"])
              + f"; degrees over 1/2: {f['degrees']:g}")
    print(f"[{elapsed:.1f} s]")
    status_line(sim)
    finish(sim.attrs["status"])
