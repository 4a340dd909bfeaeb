"""One-pass SGD of a committee machine, all seeds stepped together.

Teacher y = (1/k) Σ_r σ⋆(w*_r·x/√d) + √Δ ξ, student ŷ = (1/p) Σ_j σ(w_j·x/√d), one fresh
x ~ N(0, I_d) per step and w_j ← w_j − (γ/p)(ŷ − y) σ'(λ_j) x/√d. Time t = ν·γ/(p·d) after ν
steps. All runs start from the weights of :func:`twolayer.sgd.init.initial_weights` and differ
in their data only (run i: SFC64 stream seeded by (seed, i)). The excess risk is the exact
population risk ½E[(ŷ − y*)²] of the current weights, from their overlaps.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import xarray as xr

from twolayer import activations
from twolayer.errors import DivergenceWarning, ParameterError
from twolayer.params import SgdSimulate, takes
from twolayer.results import stamp
from twolayer.sgd.init import Overlaps, initial_weights, omega_of, weights_with
from twolayer.sgd.integrals import engine
from twolayer.sgd.ode import time_grid

__all__ = ["simulate"]

_BLOCK_ELEMENTS = 1 << 22  # inputs drawn per block, all runs together (32 MiB in float64)
_MAX_RECORDED_P = 64  # above this width only diag(Q) is stored, not the whole Q(t)


def _numpy_block(w, wt, xs, noise, lr, s_act, t_act, spherical, alive):
    """Fallback for activations without a compiled kernel: NumPy, vectorised over runs."""
    d = w.shape[-1]
    for step in range(xs.shape[1]):
        x = xs[:, step]  # (S, d)
        lam = np.einsum("spd,sd->sp", w, x) / math.sqrt(d)
        y = t_act.fn(np.einsum("skd,sd->sk", wt, x) / math.sqrt(d)).mean(-1) + noise[:, step]
        err = s_act.fn(lam).mean(-1) - y
        coef = (lr * err)[:, None] * s_act.deriv(lam) / math.sqrt(d)
        coef[~alive] = 0.0
        w -= coef[:, :, None] * x[:, None, :]
        alive &= np.isfinite(err)
        if spherical:
            w *= math.sqrt(d) / np.linalg.norm(w, axis=-1, keepdims=True)


@takes(SgdSimulate)
def simulate(prm: SgdSimulate) -> xr.Dataset:
    """Run ``seeds`` SGD runs to time ``t_max`` and record risk, M and Q on a log-time grid.

    The start is :func:`~twolayer.sgd.init.initial_weights` (seed, init_scale, spherical), or,
    with ``init``, weights in R^d whose overlaps are exactly ``init``.

    Grid: the times of :func:`twolayer.sgd.ode.time_grid`, each rounded to a whole number of
    steps (ν = round(t·p·d/γ)); ``t`` holds the exact times ν·γ/(p·d). A run whose weights stop
    being finite, or whose risk exceeds 1e6 × max(1, its start), is stopped: NaN from then on,
    ``diverged_at`` holds its time, status "diverged", and a :class:`DivergenceWarning`.
    """
    p, k, d, gamma, t_max = prm.p, prm.k, prm.d, prm.gamma, prm.t_max
    noise, n_runs, seed, spherical = prm.noise, prm.seeds, prm.seed, prm.spherical
    init = prm.overlaps()
    if init is not None and not isinstance(init, Overlaps):
        raise ParameterError("the simulation starts from full overlaps (Q, M, P)")
    s_act, t_act = activations.get(prm.student), activations.get(prm.teacher)
    eng = engine(s_act, t_act)
    dtype = np.float32 if prm.float32 else np.float64
    steps_per_t = p * d / gamma
    n_total = round(t_max * steps_per_t)
    if n_total < 1:
        raise ParameterError(
            f"t_max = {t_max:g} is less than one SGD step (γ/(p·d) = {1 / steps_per_t:.3g})"
        )
    if n_total > 5e9:
        raise ParameterError(
            f"t_max = {t_max:g} needs {n_total:.3g} SGD steps per run; use the ODE or a larger γ"
        )
    marks = np.unique(np.round(time_grid(t_max, prm.per_decade) * steps_per_t).astype(np.int64))
    if init is None:
        student_w, teacher_w = initial_weights(p, k, d, seed, prm.init_scale, spherical)
    else:
        if spherical and not np.allclose(np.diag(init.Q), 1.0, atol=1e-8):
            raise ParameterError("the spherical simulation needs diag(Q) = 1 at the start")
        student_w, teacher_w = weights_with(init, d, seed)
    w = np.repeat(student_w[None].astype(dtype), n_runs, axis=0)
    wt = np.repeat(teacher_w[None].astype(dtype), n_runs, axis=0)
    gens = [np.random.Generator(np.random.SFC64(np.random.SeedSequence([seed, i])))
            for i in range(n_runs)]
    alive = np.ones(n_runs, dtype=bool)
    compiled = s_act.kernel_id is not None and t_act.kernel_id is not None
    kernel_args = (s_act.kernel_id, t_act.kernel_id) if compiled else (s_act, t_act)
    if compiled:  # Numba kernels load only for a run that uses them
        from twolayer.sgd._kernels import sgd_block as step
    else:
        step = _numpy_block
    block = max(1, _BLOCK_ELEMENTS // (n_runs * d))
    record_q = p <= _MAX_RECORDED_P
    n_t = marks.size
    risk = np.full((n_runs, n_t), np.nan)
    Ms = np.full((n_runs, n_t, p, k), np.nan)
    Qs = np.full((n_runs, n_t, p, p) if record_q else (n_runs, n_t, p), np.nan)
    P = teacher_w @ teacher_w.T / d
    diverged_at = np.full(n_runs, np.nan)
    risk0 = None
    sqrt_noise = math.sqrt(noise)
    started = time.perf_counter()
    done = 0
    for i, mark in enumerate(marks):
        while done < mark:
            b = int(min(block, mark - done))
            xs = np.empty((n_runs, b, d), dtype=dtype)
            eps = np.empty((n_runs, b), dtype=dtype)
            for r, g in enumerate(gens):
                if alive[r]:
                    g.standard_normal(out=xs[r], dtype=dtype)
                    g.standard_normal(out=eps[r], dtype=dtype)
            eps *= sqrt_noise
            step(w, wt, xs, eps, dtype(gamma / p), *kernel_args, spherical, alive)
            done += b
        w64 = w.astype(np.float64, copy=False)
        M = np.einsum("spd,kd->spk", w64, teacher_w) / d
        finite = alive & np.all(np.isfinite(w64), axis=(-1, -2))
        r_now = np.full(n_runs, np.nan)
        if record_q:
            Q = np.einsum("spd,sqd->spq", w64, w64) / d
            if finite.any():
                r_now[finite] = eng.risk(omega_of(Q, M, P)[finite], p)
        else:  # wide: one run at a time, Q in row blocks (memory ∝ p·d, not S·p²)
            Q = np.einsum("spd,spd->sp", w64, w64) / d
            for r in np.flatnonzero(finite):
                r_now[r] = eng.risk_of_weights(w64[r], teacher_w)
        if risk0 is None:
            risk0 = max(1.0, float(np.nanmax(r_now)))
        blown = ~finite | ~(r_now <= 1e6 * risk0)
        newly = blown & np.isnan(diverged_at)
        diverged_at[newly] = marks[i] / steps_per_t
        alive &= ~blown
        risk[alive, i] = r_now[alive]
        Ms[alive, i] = M[alive]
        Qs[alive, i] = Q[alive]
    elapsed = time.perf_counter() - started
    status, message = "ok", ""
    if np.any(np.isfinite(diverged_at)):
        bad = np.flatnonzero(np.isfinite(diverged_at))
        status = "diverged"
        message = (f"{bad.size} of {n_runs} SGD runs diverged (first at t = "
                   f"{np.nanmin(diverged_at):.4g}); their risk is NaN from then on. Try a "
                   "smaller gamma")
        warnings.warn(message, DivergenceWarning, stacklevel=3)
    t = marks / steps_per_t
    q_dims = ("seed", "t", "j", "l") if record_q else ("seed", "t", "j")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns after divergence
        mean = np.nanmean(risk, axis=0)
        std = np.nanstd(risk, axis=0, ddof=1) if n_runs > 1 else np.zeros(n_t)
    ds = xr.Dataset(
        {
            "risk": (("seed", "t"), risk),
            "risk_mean": ("t", mean),
            "risk_std": ("t", std),
            "Q" if record_q else "Q_diag": (q_dims, Qs),
            "M": (("seed", "t", "j", "r"), Ms),
            "P": (("r", "s"), P),
            "diverged_at": ("seed", diverged_at),
            "steps": ("t", marks),
        },
        coords={"t": t, "seed": np.arange(n_runs)},
    )
    return stamp(ds, prm, status, message, seconds=elapsed,
                 us_per_step_per_run=1e6 * elapsed / max(1, n_total * n_runs),
                 compiled=int(compiled))
