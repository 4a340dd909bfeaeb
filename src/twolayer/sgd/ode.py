"""The dimensionless ODEs of one-pass SGD for committee machines (Arnaboldi et al. 2023).

Equation numbers are those of arXiv 2302.05882v1. After ν steps the time is t = ν·γ/(p·d)
(its Theorem 1, with the bound of Eq. 13). The student and teacher local fields
(λ, λ⋆) = (Wx, W⋆x)/√d (Eq. 7) are N(0, Ω), Ω = [[Q, M], [Mᵀ, P]] (Eq. 8); with the error
e = y − ŷ, label noise included (Eq. 10), the overlaps follow (Eqs. 11–12)

    dM_jr/dt = E[e σ'(λ_j) λ⋆_r]
    dQ_jl/dt = E[e (σ'(λ_j) λ_l + σ'(λ_l) λ_j)] + (γ/p) E[e² σ'(λ_j) σ'(λ_l)]

where E[e²·] carries the label noise Δ. ``variance=False`` drops the (γ/p) term: gradient flow
on the population risk (Eq. 14; the classical limit γ → 0 of its §3.2, valid whenever
γ/p ≪ 1). ``spherical=True`` projects the flow onto Q_jj = 1, the limit of renormalising every
w_j after each step (Arnaboldi et al. 2023b, arXiv 2305.18502v2, Eqs. 14–15):
dQ_jl ← Φ_jl − ½Q_jl(Φ_jj + Φ_ll), dM_jr ← Ψ_jr − ½M_jr Φ_jj, with Φ, Ψ the right-hand sides
above. The risk reported is the excess risk R = ½E[(ŷ − y*)²]: the population risk of Eq. 2
less its noise floor Δ/2. The code writes x ~ N(0, I_d) and λ = w·x/√d where the paper writes
x ~ N(0, I_d/d) and λ = w·x: the same fields.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.integrate import solve_ivp

from twolayer.errors import ConvergenceWarning, DivergenceWarning, ParameterError
from twolayer.params import SgdOde, takes
from twolayer.results import stamp
from twolayer.sgd.init import Overlaps, initial_overlaps, omega_of
from twolayer.sgd.integrals import Engine, ErfEngine, engine

__all__ = ["choose_reduction", "ode", "time_grid"]

_BLOWUP = 1e6


def time_grid(t_max: float, per_decade: int = 20, t_min: float | None = None) -> np.ndarray:
    """0 followed by log-spaced times from ``t_min`` (default min(0.01, t_max/100)) to t_max."""
    t_min = min(0.01, t_max / 100) if t_min is None else t_min
    n = max(2, math.ceil(per_decade * math.log10(t_max / t_min)) + 1)
    return np.concatenate([[0.0], np.geomspace(t_min, t_max, n)])


class _System:
    """Packs (Q upper triangle, M) into a vector and evaluates the flow."""

    def __init__(self, eng: Engine, P, p: int, gamma: float, noise: float, variance: bool,
                 spherical: bool):
        self.eng, self.P, self.p, self.k = eng, P, p, P.shape[0]
        self.iu = np.triu_indices(p)
        self.var_coef = gamma / p if variance else 0.0
        self.noise, self.spherical = noise, spherical
        self.omega = np.zeros((p + self.k, p + self.k))
        self.omega[p:, p:] = P

    def pack(self, Q, M):
        return np.concatenate([Q[self.iu], M.ravel()])

    def unpack(self, y):
        p = self.p
        ntri = self.iu[0].size
        Q = np.zeros((p, p))
        Q[self.iu] = y[:ntri]
        Q = Q + np.triu(Q, 1).T
        return Q, y[ntri:].reshape(p, self.k)

    def rhs(self, t, y):
        Q, M = self.unpack(y)
        om = self.omega
        om[: self.p, : self.p] = Q
        om[: self.p, self.p:] = M
        om[self.p:, : self.p] = M.T
        dq, dm = self.eng.flow(om, self.p, self.noise, self.var_coef)
        if self.spherical:
            dd = np.diag(dq).copy()
            dq = dq - 0.5 * Q * (dd[:, None] + dd[None, :])
            dm = dm - 0.5 * M * dd[:, None]
        return self.pack(dq, dm)

    def omegas(self, ys):
        """Ω at every column of ys (n_state, n_t) → (n_t, p+k, p+k)."""
        pairs = [self.unpack(y) for y in ys.T]
        if not pairs:
            return np.empty((0, self.p + self.k, self.p + self.k))
        Q, M = (np.stack(a) for a in zip(*pairs, strict=True))
        return omega_of(Q, M, self.P)


def _euler(rhs, y0, t_eval, dt, scale):
    """Fixed-step Euler, recording at the grid points (as the reference does)."""
    ys = np.full((y0.size, t_eval.size), np.nan)
    y, t, i, n_steps = y0.copy(), 0.0, 0, 0
    status, t_stop = "ok", float(t_eval[-1])
    while i < t_eval.size:
        while i < t_eval.size and t >= t_eval[i] - 1e-12 * max(1.0, t):
            ys[:, i] = y
            i += 1
        if i == t_eval.size:
            break
        y = y + dt * rhs(t, y)
        n_steps += 1
        t = n_steps * dt
        if not np.all(np.isfinite(y)) or np.max(np.abs(y)) > _BLOWUP * scale:
            status, t_stop = "diverged", t
            break
    return ys, status, t_stop, n_steps


def integrate(rhs, y0: np.ndarray, t_eval: np.ndarray, method: str, rtol: float, atol: float,
              dt: float) -> tuple[np.ndarray, str, float, int, str]:
    """Integrate dy/dt = rhs(t, y) from t = 0; the states at ``t_eval`` (NaN after a stop).

    Returns (ys, status, t_stop, nfev, message) with status "ok", "diverged" (|y| beyond 1e6 ×
    its start: a terminal event) or "failed" (the solver gave up); it warns for the last two.
    """
    scale = max(1.0, float(np.max(np.abs(y0))))
    message = ""
    if method == "euler":
        ys, status, t_stop, nfev = _euler(rhs, y0, t_eval, dt, scale)
    else:
        def blowup(t, y):
            return _BLOWUP * scale - np.max(np.abs(y))

        blowup.terminal = True
        t_max = float(t_eval[-1])
        sol = solve_ivp(rhs, (0.0, t_max), y0, method=method, t_eval=t_eval,
                        rtol=rtol, atol=atol, events=blowup)
        ys = np.full((y0.size, t_eval.size), np.nan)
        ys[:, : sol.y.shape[1]] = sol.y
        nfev, message = int(sol.nfev), str(sol.message)
        if sol.status == 1:
            status, t_stop = "diverged", float(sol.t_events[0][0])
        elif sol.status < 0:
            status, t_stop = "failed", float(sol.t[-1]) if sol.t.size else 0.0
        else:
            status, t_stop = "ok", t_max
    if status == "diverged":
        warnings.warn(f"the ODE blew up at t = {t_stop:.4g} (overlaps beyond "
                      f"{_BLOWUP:g} × their start); the risk after it is NaN",
                      DivergenceWarning, stacklevel=3)
    elif status == "failed":
        warnings.warn(f"the ODE integration failed at t = {t_stop:.4g}: {message}",
                      ConvergenceWarning, stacklevel=3)
    return ys, status, t_stop, nfev, message


#: the full ODE holds p(p+1)/2 + p·k states and O(p⁴) index arrays: beyond this width the
#: automatic choice is the wide reduction
FULL_MAX_P = 64
#: the wide reduction assumes uncorrelated orthogonal parts, which needs d ≫ 1
WIDE_MIN_D = 100


def choose_reduction(prm: SgdOde) -> str:
    """The description ``reduction="auto"`` stands for: "full" up to p = 64, "wide" above.

    Refuses (ParameterError) a wide student at small d, where neither is right today.
    """
    if prm.reduction != "auto":
        return prm.reduction
    if prm.p <= FULL_MAX_P:
        return "full"
    if prm.d >= WIDE_MIN_D:
        return "wide"
    raise ParameterError(
        f"p = {prm.p} at d = {prm.d}: the full ODE is too large beyond p = {FULL_MAX_P} and the "
        f"wide reduction assumes d >= {WIDE_MIN_D} (uncorrelated orthogonal parts); choose "
        "reduction='full' (slow, O(p^4) memory) or reduction='wide' (approximate at small d)")


@dataclass
class Run:
    """What an integration did: states at the output times, verdict, cost."""

    ys: np.ndarray
    status: str
    t_stop: float
    nfev: int
    message: str
    solver: str
    rtol: float
    seconds: float


def run_solver(rhs, y0, t_eval, prm: SgdOde, solver: str, rtol: float) -> Run:
    """:func:`integrate` with the parameters' tolerances, timed."""
    started = time.perf_counter()
    ys, status, t_stop, nfev, message = integrate(rhs, y0, t_eval, solver, rtol, prm.atol,
                                                  prm.dt)
    return Run(ys, status, t_stop, nfev, message, solver, rtol,
               time.perf_counter() - started)


def _verdict(run: Run) -> tuple[str, str]:
    if run.status == "diverged":
        return "diverged", (f"the ODE blew up at t = {run.t_stop:.4g} (overlaps beyond {_BLOWUP:g} "
                            "× their start); the risk after it is NaN. SGD is unstable at this "
                            "learning rate: try a smaller gamma")
    if run.status == "failed":
        return "failed", (f"the solver {run.solver} gave up at t = {run.t_stop:.4g} "
                          f"({run.message}); try solver='LSODA' or 'BDF', or a larger rtol")
    return "ok", ""


@takes(SgdOde)
def ode(prm: SgdOde) -> xr.Dataset:
    """Integrate the committee-machine ODEs; return the excess risk R(t) and the overlaps.

    The start is ``init`` (overlaps, or a JSON file of them) or, when None, the exact overlaps
    that :func:`twolayer.sgd.simulate` draws for (p, k, d, seed, init_scale, spherical). Only
    γ/p enters, through the variance term; ``noise`` is the label noise variance Δ. Output
    times: 0 and ``per_decade`` log-spaced points per decade up to ``t_max``.

    ``reduction``: "full" integrates (Q, M) (this module); "wide" the large-width reduction in
    (M, q) of :mod:`twolayer.sgd.wide` (cost ∝ p; the result then has ``q`` and ``Q_diag``
    instead of ``Q``); "auto" takes full up to p = 64 and wide above (for d ≥ 100); the choice
    is the ``reduction`` attribute. ``solver``: a scipy ``solve_ivp`` method or "euler" (fixed
    step ``dt``); "auto" is LSODA with rtol 1e-8 for the compiled erf closed forms and RK45
    with rtol 1e-6 (the accuracy of the quadrature) for other activations, RK45 with rtol 1e-7
    for the wide reduction. A blow-up (|overlaps| beyond 1e6 × their start) stops the
    integration: status "diverged", its time in ``t_stop``, NaN afterwards, and a
    :class:`DivergenceWarning`.
    """
    reduction = choose_reduction(prm)
    if reduction == "wide":
        from twolayer.sgd.wide import integrate_wide

        ds, run = integrate_wide(prm)
    else:
        ds, run = _integrate_full(prm)
    status, message = _verdict(run)
    return stamp(ds, prm, status, message, reduction=reduction, solver=run.solver,
                 rtol=run.rtol, t_stop=run.t_stop, nfev=run.nfev, solver_message=run.message,
                 seconds=run.seconds)


def _integrate_full(prm: SgdOde) -> tuple[xr.Dataset, Run]:
    """The full ODE in (Q, M): O(p²) states, the erf kernels or the quadrature engine."""
    init = prm.overlaps() or initial_overlaps(prm.p, prm.k, prm.d, prm.seed, prm.init_scale,
                                              prm.spherical)
    if not isinstance(init, Overlaps):
        raise ParameterError("reduced overlaps (M, q, P) start only reduction='wide'")
    p, k = init.p, init.k
    if prm.spherical and not np.allclose(np.diag(init.Q), 1.0, atol=1e-8):
        raise ParameterError("the spherical ODE needs diag(Q) = 1 at the start")
    eng = engine(prm.student, prm.teacher)
    erf = isinstance(eng, ErfEngine)
    solver = prm.solver if prm.solver != "auto" else ("LSODA" if erf else "RK45")
    rtol = prm.rtol if prm.rtol is not None else (1e-8 if erf else 1e-6)
    system = _System(eng, init.P, p, prm.gamma, prm.noise, prm.variance, prm.spherical)
    t_eval = time_grid(prm.t_max, prm.per_decade)
    run = run_solver(system.rhs, system.pack(init.Q, init.M), t_eval, prm, solver, rtol)
    done = np.all(np.isfinite(run.ys), axis=0)
    risk = np.full(t_eval.size, np.nan)
    om = system.omegas(run.ys[:, done])
    if om.shape[0]:
        risk[done] = eng.risk(om, p)
    Qs = np.full((t_eval.size, p, p), np.nan)
    Ms = np.full((t_eval.size, p, k), np.nan)
    Qs[done] = om[:, :p, :p]
    Ms[done] = om[:, :p, p:]
    ds = xr.Dataset({"risk": ("t", risk), "Q": (("t", "j", "l"), Qs),
                     "M": (("t", "j", "r"), Ms), "P": (("r", "s"), init.P)},
                    coords={"t": t_eval})
    return ds, run
