"""One-pass SGD of a committee machine, all seeds stepped together.

Arnaboldi et al. 2023 (arXiv 2302.05882v1) with unit second layers: teacher
y = (1/k) Σ_r σ⋆(w*_r·x/√d) + √Δ ξ (Eq. 5), student ŷ = (1/p) Σ_j σ(w_j·x/√d) (Eq. 1), one fresh
x ~ N(0, I_d) per step and w_j ← w_j − (γ/p)(ŷ − y) σ'(λ_j) x/√d (Eq. 3, square loss). Time
t = ν·γ/(p·d) after ν steps (Theorem 1); ``spherical`` renormalises every row to norm √d after
each step (arXiv 2305.18502v2, Eq. 14). All runs start from the weights of
:func:`twolayer.sgd.init.initial_weights` and differ in their data only (run i: SFC64 stream
seeded by (seed, i)). The excess risk is the exact population risk ½E[(ŷ − y*)²] of the
current weights, from their overlaps.

Extensions (``batch``, ``gamma_a``, ``weight_decay``, ``schedule``): ŷ = (1/p) Σ_j a_j σ(λ_j),
a_j(0) = 1; step ν uses b fresh samples and the rate γ_ν = γ·g(ν·γ/(p·d)), e = ŷ − y:
w_j ← (1 − γ_ν ω/(p d)) w_j − (γ_ν/p)(1/b) Σ_μ e_μ a_j σ'(λ_jμ) x_μ/√d and
a_j ← a_j − (γ_a g/d)(1/b) Σ_μ e_μ σ(λ_jμ), both at the weights before the step. The time
stays t = ν·γ/(p·d).
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
from twolayer.sgd.schedule import Schedule

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


def _numpy_batch_block(w, wt, a, xs, noise, lrs, lras, shrink, batch, s_act, t_act, spherical,
                       alive):
    """Fallback of the extended step (mini-batch, second layer a, decay, schedule): NumPy,
    vectorised over runs and the batch (see :func:`twolayer.sgd._kernels.sgd_batch_block`)."""
    d = w.shape[-1]
    for step in range(lrs.size):
        x = xs[:, step * batch:(step + 1) * batch]  # (S, b, d)
        lam = np.einsum("spd,sbd->sbp", w, x) / math.sqrt(d)
        y = (t_act.fn(np.einsum("skd,sbd->sbk", wt, x) / math.sqrt(d)).mean(-1)
             + noise[:, step * batch:(step + 1) * batch])
        h = s_act.fn(lam)
        err = np.einsum("sbp,sp->sb", h, a) / w.shape[1] - y  # (S, b)
        alive &= np.all(np.isfinite(err), axis=1)
        coef = err[:, :, None] * a[:, None, :] * s_act.deriv(lam)  # (S, b, p)
        grad = np.einsum("sbp,sbd->spd", coef, x) / (batch * math.sqrt(d))
        da = np.einsum("sb,sbp->sp", err, h) / batch
        grad[~alive], da[~alive] = 0.0, 0.0
        w[alive] *= shrink[step]
        w -= lrs[step] * grad
        a -= lras[step] * da
        if spherical:
            w[alive] *= math.sqrt(d) / np.linalg.norm(w[alive], axis=-1, keepdims=True)


def _schedule(prm: SgdSimulate) -> tuple[float, int, np.ndarray]:
    """The time change t = ν·γ/(p·d): steps per unit of t, total steps, recorded step counts."""
    steps_per_t = prm.p * prm.d / prm.gamma
    n_total = round(prm.t_max * steps_per_t)
    if n_total < 1:
        raise ParameterError(f"t_max = {prm.t_max:g} is less than one SGD step "
                             f"(γ/(p·d) = {1 / steps_per_t:.3g})")
    if n_total * prm.batch > 5e9:
        raise ParameterError(f"t_max = {prm.t_max:g} needs {n_total * prm.batch:.3g} samples "
                             "per run; use the ODE or a larger γ")
    marks = np.round(time_grid(prm.t_max, prm.per_decade) * steps_per_t).astype(np.int64)
    return steps_per_t, n_total, np.unique(marks)


def _start(prm: SgdSimulate) -> tuple[np.ndarray, np.ndarray]:
    """(W0, W*): the drawn initial weights, or weights in R^d with the ``init`` overlaps."""
    init = prm.overlaps()
    if init is None:
        return initial_weights(prm.p, prm.k, prm.d, prm.seed, prm.init_scale, prm.spherical)
    if not isinstance(init, Overlaps):
        raise ParameterError("the simulation starts from full overlaps (Q, M, P)")
    if prm.spherical and not np.allclose(np.diag(init.Q), 1.0, atol=1e-8):
        raise ParameterError("the spherical simulation needs diag(Q) = 1 at the start")
    return weights_with(init, prm.d, prm.seed)


class _Runs:
    """All runs' weights, stepped together on fresh Gaussian inputs (one stream per run)."""

    def __init__(self, prm: SgdSimulate, student_w: np.ndarray, teacher_w: np.ndarray):
        s_act, t_act = activations.get(prm.student), activations.get(prm.teacher)
        self.dtype = np.float32 if prm.float32 else np.float64
        n = prm.seeds
        self.w = np.repeat(student_w[None].astype(self.dtype), n, axis=0)
        self.wt = np.repeat(teacher_w[None].astype(self.dtype), n, axis=0)
        self.gens = [np.random.Generator(np.random.SFC64(np.random.SeedSequence([prm.seed, i])))
                     for i in range(n)]
        self.alive = np.ones(n, dtype=bool)
        self.compiled = s_act.kernel_id is not None and t_act.kernel_id is not None
        if self.compiled:  # Numba kernels load only for a run that uses them
            from twolayer.sgd._kernels import sgd_block

            self.step, self.acts = sgd_block, (s_act.kernel_id, t_act.kernel_id)
        else:
            self.step, self.acts = _numpy_block, (s_act, t_act)
        self.lr = self.dtype(prm.gamma / prm.p)
        self.sqrt_noise, self.spherical = math.sqrt(prm.noise), prm.spherical
        self.batch = prm.batch
        self.block = max(1, _BLOCK_ELEMENTS // (n * prm.d * prm.batch))
        self.a = np.ones((n, prm.p), dtype=self.dtype)
        self.extended = prm.extended
        if self.extended:  # γ_i/p, γ_a,i/d and 1 − γ_i ω/(p d) at step i, γ_i = γ·g(t_i)
            self.sched, self.steps_per_t = Schedule.of(prm), prm.p * prm.d / prm.gamma
            self.rates = (prm.gamma / prm.p, prm.gamma_a / prm.d,
                          prm.gamma * prm.weight_decay / (prm.p * prm.d))
            self.done = 0
            if self.compiled:
                from twolayer.sgd._kernels import sgd_batch_block

                self.step = sgd_batch_block
                self.grad = np.empty((prm.p, prm.d), dtype=self.dtype)
            else:
                self.step = _numpy_batch_block

    def advance(self, n_steps: int) -> None:
        """``n_steps`` SGD steps of every live run (w_j ← w_j − (γ/p)(ŷ − y)σ'(λ_j)x/√d, or
        the extended step of :func:`simulate`)."""
        n, d = self.w.shape[0], self.w.shape[-1]
        while n_steps > 0:
            b = int(min(self.block, n_steps))
            m = b * self.batch
            xs = np.empty((n, m, d), dtype=self.dtype)
            eps = np.empty((n, m), dtype=self.dtype)
            for r, g in enumerate(self.gens):
                if self.alive[r]:
                    g.standard_normal(out=xs[r], dtype=self.dtype)
                    g.standard_normal(out=eps[r], dtype=self.dtype)
            eps *= self.sqrt_noise
            if self.extended:
                self._extended(xs, eps, b)
            else:
                self.step(self.w, self.wt, xs, eps, self.lr, *self.acts, self.spherical,
                          self.alive)
            n_steps -= b

    def _extended(self, xs, eps, n_steps: int) -> None:
        g = self.sched.factor((self.done + np.arange(n_steps)) / self.steps_per_t)
        g = np.broadcast_to(np.asarray(g, dtype=np.float64), (n_steps,))
        lrs, lras, shrink = (np.ascontiguousarray(r * g, dtype=self.dtype) for r in self.rates)
        shrink = (1.0 - shrink).astype(self.dtype)
        args = (self.w, self.wt, self.a, xs, eps, lrs, lras, shrink, self.batch, *self.acts,
                self.spherical, self.alive)
        self.step(*args, self.grad) if self.compiled else self.step(*args)
        self.done += n_steps


class _Record:
    """Risk, M and Q of every run at the recorded times; stops a run that blew up."""

    def __init__(self, prm: SgdSimulate, teacher_w: np.ndarray, n_t: int):
        n, p, k = prm.seeds, prm.p, prm.k
        self.eng = engine(prm.student, prm.teacher)
        self.teacher_w, self.p, self.d = teacher_w, p, prm.d
        self.P = teacher_w @ teacher_w.T / prm.d
        self.full_q = p <= _MAX_RECORDED_P
        self.risk = np.full((n, n_t), np.nan)
        self.M = np.full((n, n_t, p, k), np.nan)
        self.Q = np.full((n, n_t, p, p) if self.full_q else (n, n_t, p), np.nan)
        self.A = np.full((n, n_t, p), np.nan) if prm.gamma_a > 0 else None
        self.diverged_at = np.full(n, np.nan)
        self.risk0: float | None = None

    def take(self, i: int, t: float, runs: _Runs) -> None:
        """Record column ``i`` (time ``t``); a run whose weights are not finite or whose risk
        exceeds 1e6 × max(1, its start) is stopped there."""
        w64 = runs.w.astype(np.float64, copy=False)
        a = runs.a.astype(np.float64) if self.A is not None else None
        M = np.einsum("spd,kd->spk", w64, self.teacher_w) / self.d
        finite = runs.alive & np.all(np.isfinite(w64), axis=(-1, -2))
        if a is not None:
            finite &= np.all(np.isfinite(a), axis=-1)
        r_now = np.full(w64.shape[0], np.nan)
        if self.full_q:
            Q = np.einsum("spd,sqd->spq", w64, w64) / self.d
            if finite.any():
                r_now[finite] = self.eng.risk(omega_of(Q, M, self.P)[finite], self.p,
                                              None if a is None else a[finite])
        else:  # wide: one run at a time, Q in row blocks (memory ∝ p·d, not S·p²)
            Q = np.einsum("spd,spd->sp", w64, w64) / self.d
            for r in np.flatnonzero(finite):
                r_now[r] = self.eng.risk_of_weights(w64[r], self.teacher_w,
                                                    a=None if a is None else a[r])
        if self.risk0 is None:
            self.risk0 = max(1.0, float(np.nanmax(r_now)))
        blown = ~finite | ~(r_now <= 1e6 * self.risk0)
        self.diverged_at[blown & np.isnan(self.diverged_at)] = t
        runs.alive &= ~blown
        live = runs.alive
        self.risk[live, i], self.M[live, i], self.Q[live, i] = r_now[live], M[live], Q[live]
        if a is not None:
            self.A[live, i] = a[live]


@takes(SgdSimulate)
def simulate(prm: SgdSimulate) -> xr.Dataset:
    """Run ``seeds`` SGD runs to time ``t_max`` and record risk, M and Q on a log-time grid.

    The start is :func:`~twolayer.sgd.init.initial_weights` (seed, init_scale, spherical), or,
    with ``init``, weights in R^d whose overlaps are exactly ``init``.

    Grid: the times of :func:`twolayer.sgd.ode.time_grid`, each rounded to a whole number of
    steps (ν = round(t·p·d/γ)); ``t`` holds the exact times ν·γ/(p·d). A run whose weights stop
    being finite, or whose risk exceeds 1e6 × max(1, its start), is stopped: NaN from then on,
    ``diverged_at`` holds its time, status "diverged", and a :class:`DivergenceWarning`.
    With ``gamma_a`` > 0 the result also holds the second layer ``a`` (seed, t, j), and the
    risk is that of the current (W, a). ``us_per_step_per_run`` counts steps (b samples each).
    """
    steps_per_t, n_total, marks = _schedule(prm)
    student_w, teacher_w = _start(prm)
    runs = _Runs(prm, student_w, teacher_w)
    rec = _Record(prm, teacher_w, marks.size)
    started = time.perf_counter()
    done = 0
    for i, mark in enumerate(marks):
        runs.advance(int(mark - done))
        done = int(mark)
        rec.take(i, mark / steps_per_t, runs)
    elapsed = time.perf_counter() - started
    return stamp(_dataset(rec, marks, steps_per_t), prm, *_verdict(rec.diverged_at),
                 seconds=elapsed, us_per_step_per_run=1e6 * elapsed / (n_total * prm.seeds),
                 compiled=int(runs.compiled))


def _verdict(diverged_at: np.ndarray) -> tuple[str, str]:
    bad = np.isfinite(diverged_at)
    if not bad.any():
        return "ok", ""
    message = (f"{int(bad.sum())} of {bad.size} SGD runs diverged (first at t = "
               f"{np.nanmin(diverged_at):.4g}); their risk is NaN from then on. Try a smaller "
               "gamma")
    warnings.warn(message, DivergenceWarning, stacklevel=4)
    return "diverged", message


def _dataset(rec: _Record, marks: np.ndarray, steps_per_t: float) -> xr.Dataset:
    n_runs, n_t = rec.risk.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns after divergence
        mean = np.nanmean(rec.risk, axis=0)
        std = np.nanstd(rec.risk, axis=0, ddof=1) if n_runs > 1 else np.zeros(n_t)
    q_dims = ("seed", "t", "j", "l") if rec.full_q else ("seed", "t", "j")
    second = {} if rec.A is None else {"a": (("seed", "t", "j"), rec.A)}
    return xr.Dataset(
        {
            **second,
            "risk": (("seed", "t"), rec.risk),
            "risk_mean": ("t", mean),
            "risk_std": ("t", std),
            "Q" if rec.full_q else "Q_diag": (q_dims, rec.Q),
            "M": (("seed", "t", "j", "r"), rec.M),
            "P": (("r", "s"), rec.P),
            "diverged_at": ("seed", rec.diverged_at),
            "steps": ("t", marks),
        },
        coords={"t": marks / steps_per_t, "seed": np.arange(n_runs)},
    )
