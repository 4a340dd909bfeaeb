"""The dimensionless ODEs of one-pass SGD for committee machines (Arnaboldi et al. 2023).

In t = ν·γ/(p·d), with e = y − ŷ and (λ, ν) ~ N(0, [[Q, M], [Mᵀ, P]]):

    dM_jr/dt = E[e σ'(λ_j) ν_r]
    dQ_jl/dt = E[e (σ'(λ_j) λ_l + σ'(λ_l) λ_j)] + (γ/p) E[e² σ'(λ_j) σ'(λ_l)]

where E[e²·] carries the label noise Δ. ``variance=False`` drops the (γ/p) term: gradient flow
on the population risk (the γ → 0 limit). ``spherical=True`` projects the flow onto Q_jj = 1,
the limit of renormalising every w_j after each step: dQ_jl ← Φ_jl − ½Q_jl(Φ_jj + Φ_ll),
dM_jr ← Ψ_jr − ½M_jr Φ_jj. The risk reported is the excess risk R = ½E[(ŷ − y*)²].
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import xarray as xr
from scipy.integrate import solve_ivp

import twolayer
from twolayer import _validate as check
from twolayer.errors import ConvergenceWarning, DivergenceWarning, ParameterError
from twolayer.io import dumps
from twolayer.sgd.init import Overlaps, initial_overlaps, omega_of
from twolayer.sgd.integrals import Engine, ErfEngine, engine

__all__ = ["METHODS", "ode", "time_grid"]

METHODS = ("auto", "BDF", "LSODA", "RK45", "DOP853", "Radau", "euler")
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


def check_run(gamma, t_max, noise, method: str) -> tuple[float, float, float]:
    """Validated (γ > 0, t_max > 0, Δ ≥ 0); ParameterError for those or an unknown method."""
    if method not in METHODS:
        raise ParameterError(f"unknown ODE method {method!r}; choose one of {', '.join(METHODS)}")
    return (check.real("gamma", gamma, low=0.0, strict=True),
            check.real("t_max", t_max, low=0.0, strict=True),
            check.real("noise", noise, low=0.0))


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


def ode(
    student: str = "erf",
    teacher: str = "erf",
    *,
    p: int | None = None,
    k: int | None = None,
    gamma: float,
    t_max: float,
    noise: float = 0.0,
    d: int = 1000,
    seed: int = 0,
    init_scale: float = 1.0,
    init: Overlaps | None = None,
    variance: bool = True,
    spherical: bool = False,
    method: str = "auto",
    dt: float = 1e-3,
    rtol: float | None = None,
    atol: float = 1e-10,
    per_decade: int = 20,
) -> xr.Dataset:
    """Integrate the committee-machine ODE and return Q(t), M(t) and the excess risk R(t).

    The start is ``init`` (checked overlaps) or, when it is None, the exact overlaps that
    :func:`twolayer.sgd.simulate` draws for (p, k, d, seed, init_scale, spherical). ``gamma`` is
    the SGD learning rate γ (only γ/p enters, through the variance term), ``noise`` the label
    noise variance Δ. Output times: 0 and ``per_decade`` log-spaced points per decade up to
    ``t_max``. ``method`` is a scipy ``solve_ivp`` method or "euler" (fixed step ``dt``); "auto"
    takes LSODA with rtol 1e-8 for the compiled erf closed forms and RK45 with rtol 1e-6 (the
    accuracy of the quadrature) for every other pair of activations.
    A blow-up (|overlaps| beyond 1e6 × their start) stops the integration: status "diverged",
    the time in ``t_stop``, NaN afterwards, and a :class:`DivergenceWarning`.
    """
    gamma, t_max, noise = check_run(gamma, t_max, noise, method)
    if init is None:
        if p is None or k is None:
            raise ParameterError("give p and k (or init overlaps)")
        p, k = check.integer("p", p), check.integer("k", k)
        d = check.integer("d", d)
        init_scale = check.real("init_scale", init_scale, low=0.0, strict=True)
        init = initial_overlaps(p, k, d, check.integer("seed", seed, low=0), init_scale, spherical)
    else:
        init.check()
        if (p is not None and p != init.p) or (k is not None and k != init.k):
            raise ParameterError(
                f"the init overlaps are for p={init.p}, k={init.k}, not p={p}, k={k}"
            )
        p, k = init.p, init.k
    if spherical and not np.allclose(np.diag(init.Q), 1.0, atol=1e-8):
        raise ParameterError("the spherical ODE needs diag(Q) = 1 at the start")
    eng = engine(student, teacher)
    if method == "auto":
        method = "LSODA" if isinstance(eng, ErfEngine) else "RK45"
    if rtol is None:
        rtol = 1e-8 if isinstance(eng, ErfEngine) else 1e-6
    system = _System(eng, init.P, p, gamma, noise, variance, spherical)
    y0 = system.pack(init.Q, init.M)
    if method == "euler":
        dt = check.real("dt", dt, low=0.0, strict=True)
    t_eval = time_grid(t_max, per_decade)
    started = time.perf_counter()
    ys, status, t_stop, nfev, message = integrate(system.rhs, y0, t_eval, method, rtol, atol, dt)
    elapsed = time.perf_counter() - started
    done = np.all(np.isfinite(ys), axis=0)
    risk = np.full(t_eval.size, np.nan)
    om = system.omegas(ys[:, done])
    if om.shape[0]:
        risk[done] = eng.risk(om, p)
    Qs = np.full((t_eval.size, p, p), np.nan)
    Ms = np.full((t_eval.size, p, k), np.nan)
    Qs[done] = om[:, :p, :p]
    Ms[done] = om[:, :p, p:]
    params = {"student": eng.student.name, "teacher": eng.teacher.name, "p": p, "k": k,
              "gamma": gamma, "noise": noise, "t_max": t_max, "variance": variance,
              "spherical": spherical, "method": method, "d": d, "seed": seed,
              "init_scale": init_scale, "rtol": rtol, "atol": atol}
    if method == "euler":
        params["dt"] = dt
    return xr.Dataset(
        {
            "risk": ("t", risk),
            "Q": (("t", "j", "l"), Qs),
            "M": (("t", "j", "r"), Ms),
            "P": (("r", "s"), init.P),
        },
        coords={"t": t_eval},
        attrs={"status": status, "t_stop": t_stop, "nfev": nfev, "message": message,
               "elapsed_s": elapsed, "params": dumps(params), "version": twolayer.__version__,
               "model": "sgd", "method": "ode"},
    )
