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

Extensions (the parameters ``batch`` b, ``gamma_a`` γ_a, ``weight_decay`` ω, ``schedule`` g):
with a second layer ŷ = (1/p) Σ_j a_j σ(λ_j) the gradient of w_j carries a_j, so
dM_jr = g (a_j E[e σ'_j λ⋆_r] − ω M_jr), dQ_jl = g (a_j E[e σ'_j λ_l] + a_l E[e σ'_l λ_j]
− 2ω Q_jl) + g² (γ/(p b)) a_j a_l E[e² σ'_j σ'_l] and da_j/dt = g (γ_a p/γ) E[e σ(λ_j)]
(e = y − ŷ as above; t keeps counting steps at the base rate γ, see
:mod:`twolayer.sgd.schedule`).
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np
import xarray as xr
from scipy.integrate import solve_ivp

from twolayer.errors import ConvergenceWarning, DivergenceWarning, ParameterError
from twolayer.params import SgdOde, takes
from twolayer.resources import available_bytes
from twolayer.results import stamp
from twolayer.sgd.init import Overlaps, initial_overlaps, omega_of
from twolayer.sgd.integrals import Engine, ErfEngine, engine
from twolayer.sgd.schedule import Schedule

__all__ = ["choose_reduction", "memory_estimate", "ode", "time_grid"]

_BLOWUP = 1e6


def time_grid(t_max: float, per_decade: int = 20, t_min: float | None = None) -> np.ndarray:
    """0 followed by log-spaced times from ``t_min`` (default min(0.01, t_max/100)) to t_max."""
    t_min = min(0.01, t_max / 100) if t_min is None else t_min
    n = max(2, math.ceil(per_decade * math.log10(t_max / t_min)) + 1)
    return np.concatenate([[0.0], np.geomspace(t_min, t_max, n)])


class _System:
    """Packs (Q upper triangle, M, and a when it is trained) into a vector; evaluates the flow.

    With the extensions (mini-batch b, second layer a, weight decay ω, schedule g(t)):
    dM = g (a_j-weighted drift − ω M), dQ = g (drift − 2ω Q) + g² (γ/(p b)) a_j a_l E[e²σ'σ'],
    da_j = g (γ_a p/γ) E[(y − ŷ) σ(λ_j)].
    """

    def __init__(self, eng: Engine, P, p: int, gamma: float, noise: float, variance: bool,
                 spherical: bool, batch: int = 1, gamma_a: float = 0.0, decay: float = 0.0,
                 schedule: Schedule | None = None):
        self.eng, self.P, self.p, self.k = eng, P, p, P.shape[0]
        self.iu = np.triu_indices(p)
        self.var_coef = gamma / (p * batch) if variance else 0.0
        self.noise, self.spherical = noise, spherical
        self.a_coef = gamma_a * p / gamma  # da/dt = (γ_a p/γ) E[(y − ŷ) σ]
        self.decay = decay
        self.schedule = None if schedule is None or schedule.constant else schedule
        self.omega = np.zeros((p + self.k, p + self.k))
        self.omega[p:, p:] = P

    def pack(self, Q, M, a=None):
        parts = [Q[self.iu], M.ravel()]
        return np.concatenate([*parts, a] if self.a_coef else parts)

    def unpack(self, y):
        """(Q, M, a): a is None when the second layer is fixed at 1."""
        p = self.p
        ntri = self.iu[0].size
        Q = np.zeros((p, p))
        Q[self.iu] = y[:ntri]
        Q = Q + np.triu(Q, 1).T
        n_m = ntri + p * self.k
        a = y[n_m:] if self.a_coef else None
        return Q, y[ntri:n_m].reshape(p, self.k), a

    def rhs(self, t, y):
        Q, M, a = self.unpack(y)
        om = self.omega
        om[: self.p, : self.p] = Q
        om[: self.p, self.p:] = M
        om[self.p:, : self.p] = M.T
        g = 1.0 if self.schedule is None else self.schedule.factor(t)
        dq, dm = self.eng.flow(om, self.p, self.noise, self.var_coef * g, a)
        if self.decay:
            dq = dq - 2.0 * self.decay * Q
            dm = dm - self.decay * M
        if g != 1.0:
            dq, dm = g * dq, g * dm
        if self.spherical:
            dd = np.diag(dq).copy()
            dq = dq - 0.5 * Q * (dd[:, None] + dd[None, :])
            dm = dm - 0.5 * M * dd[:, None]
        da = g * self.a_coef * self.eng.readout(om, self.p, a) if self.a_coef else None
        return self.pack(dq, dm, da)

    def omegas(self, ys):
        """Ω at every column of ys (n_state, n_t) → (n_t, p+k, p+k)."""
        pairs = [self.unpack(y)[:2] for y in ys.T]
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
              dt: float, breaks: tuple[float, ...] = ()) -> tuple[np.ndarray, str, float, int, str]:
    """Integrate dy/dt = rhs(t, y) from t = 0; the states at ``t_eval`` (NaN after a stop).

    ``breaks``: times where rhs jumps (a steps schedule); solve_ivp restarts there.
    Returns (ys, status, t_stop, nfev, message) with status "ok", "diverged" (|y| beyond 1e6 ×
    its start: a terminal event) or "failed" (the solver gave up); it warns for the last two.
    """
    scale = max(1.0, float(np.max(np.abs(y0))))
    message = ""
    failure: dict = {}

    def guarded(t, y):
        """The right-hand side; an arithmetic failure stops the run instead of raising."""
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                return rhs(t, y)
        except ArithmeticError as e:  # ZeroDivisionError, OverflowError, FloatingPointError
            failure.setdefault("at", (float(t), f"{type(e).__name__}: {e}"))
            return np.full_like(y, np.nan)

    if method == "euler":
        ys, status, t_stop, nfev = _euler(guarded, y0, t_eval, dt, scale)
    else:
        def blowup(t, y):
            return _BLOWUP * scale - np.max(np.abs(y))

        blowup.terminal = True
        t_max = float(t_eval[-1])
        edges = [0.0, *(b for b in breaks if 0.0 < b < t_max), t_max]
        ys = np.full((y0.size, t_eval.size), np.nan)
        y, nfev, status, t_stop = y0, 0, "ok", t_max
        for lo, hi in itertools.pairwise(edges):
            inside = np.flatnonzero((t_eval >= lo) & (t_eval <= hi))
            te = np.union1d(t_eval[inside], [hi])  # the end state starts the next segment
            sol = solve_ivp(guarded, (lo, hi), y, method=method, t_eval=te,
                            rtol=rtol, atol=atol, events=blowup,
                            **solver_options(method, y0.size))
            cols = np.searchsorted(te, t_eval[inside])
            got = cols < sol.y.shape[1]
            ys[:, inside[got]] = sol.y[:, cols[got]]
            nfev, message = nfev + int(sol.nfev), str(sol.message)
            if sol.status == 1:
                status, t_stop = "diverged", float(sol.t_events[0][0])
            elif sol.status < 0:
                status, t_stop = "failed", float(sol.t[-1]) if sol.t.size else lo
            if status != "ok":
                break
            y = sol.y[:, -1]
    if failure:
        t_fail, what = failure["at"]
        status, t_stop = "failed", t_fail
        message = f"the right-hand side failed at t = {t_fail:.4g}: {what}"
        ys[:, t_eval >= t_fail] = np.nan
    if status == "diverged":
        warnings.warn(f"the ODE blew up at t = {t_stop:.4g} (overlaps beyond "
                      f"{_BLOWUP:g} × their start); the risk after it is NaN",
                      DivergenceWarning, stacklevel=3)
    elif status == "failed":
        warnings.warn(f"the ODE integration failed at t = {t_stop:.4g}: {message}",
                      ConvergenceWarning, stacklevel=3)
    return ys, status, t_stop, nfev, message


#: up to this width ``auto`` takes the full ODE without estimating its cost
FULL_MAX_P = 64
#: the wide reduction assumes uncorrelated orthogonal parts, which needs d ≫ 1
WIDE_MIN_D = 100
#: beyond FULL_MAX_P, ``auto`` takes the full ODE when its estimated time is below this
AUTO_MAX_SECONDS = 600.0
#: LSODA allocates a dense n_state² Jacobian workspace up front (scipy), used only if the problem
#: turns stiff; beyond this size it gets a banded one of width 0 (its Adams steps are the same)
DENSE_JACOBIAN_BYTES = 64 << 20


def state_size(p: int, k: int) -> int:
    """The number of states of the full ODE: Q's upper triangle and M."""
    return p * (p + 1) // 2 + p * k


def solver_options(solver: str, n_state: int) -> dict:
    """solve_ivp options: a diagonal-band Jacobian for LSODA when the dense one is too big."""
    if solver == "LSODA" and 8 * n_state**2 > DENSE_JACOBIAN_BYTES:
        return {"lband": 0, "uband": 0}
    return {}


def memory_estimate(p: int, k: int, n_t: int, solver: str) -> int:
    """Peak bytes of the full ODE beyond the interpreter (approximate, an upper estimate).

    The solver's work arrays (LSODA: n_s² + 20 n_s doubles with a dense Jacobian, 16 n_s with
    the band of :func:`solver_options`; BDF 3 n_s², Radau 5 n_s² (real and complex LU);
    explicit methods 16 n_s), the states at the n_t output times twice (solver, copy), and Ω, Q,
    M and the pair integrals of the risk at those times (6 n_t (p+k)² doubles); the right-hand
    side needs O((p+k)²) more (pair quadratures in chunks of fixed size, see integrals).
    """
    n_s, n = state_size(p, k), p + k
    if solver == "LSODA":
        work = 16 * n_s if solver_options(solver, n_s) else n_s**2 + 20 * n_s
    elif solver == "BDF":
        work = 3 * n_s**2 + 20 * n_s
    elif solver == "Radau":
        work = 5 * n_s**2 + 20 * n_s
    else:
        work = 16 * n_s
    return 8 * (work + 2 * n_t * n_s + 6 * n_t * n * n + 8 * n * n) + _CHUNK_BYTES


#: the pair quadratures of the generic engine run in chunks of at most this many bytes
_CHUNK_BYTES = 4 * 8 * (1 << 22)


def expected_evaluations(t_max: float, solver: str, dt: float) -> float:
    """About how many right-hand sides an integration to t_max takes (a rough guide).

    Euler: t_max/dt. Else measured for LSODA on erf at p = 10–40, d = 3, rtol 1e-8: ~160 to
    t = 10, ~400 to 100, 1500–3500 to 1000; taken as 150 + 3 t_max.
    """
    if solver == "euler":
        return t_max / dt
    return 150.0 + 3.0 * t_max


def _gib(b: float) -> str:
    return f"{b / 2**30:.3g} GiB"


def check_memory(p: int, k: int, n_t: int, solver: str, d: int | None = None,
                 extra: float = 0.0) -> int:
    """The memory estimate (returned); ParameterError when it exceeds the available memory.
    ``d``: the start is drawn as weights (p + k rows of d) and their overlaps (p + k)², which
    must fit too (they are freed before the integration, so they are not returned).
    ``extra``: bytes held during the integration besides the solver's (the variance samples)."""
    need = int(memory_estimate(p, k, n_t, solver) + extra)
    total = need if d is None else need + 8 * ((p + k) * d + 2 * (p + k) ** 2)
    avail = available_bytes()
    if total > avail:
        raise ParameterError(
            f"the full ODE at p = {p} needs about {_gib(total)} with solver {solver} and "
            f"{_gib(avail)} is available; use reduction='wide' (for d >> 1), fewer units, "
            + ("fewer variance_samples, " if extra else "")
            + "or solver='LSODA'/'RK45' (no dense Jacobian)")
    return need


@cache
def _erf_term_seconds() -> float:
    """Seconds per (j ≤ l, a ≤ b) term of the compiled erf variance kernel, timed here once."""
    from twolayer.sgd._kernels import erf_flow
    from twolayer.sgd.integrals import error_weights

    p, k = 24, 2
    init = initial_overlaps(p, k, 3, 0, 1.0, False)
    om, v = omega_of(init.Q, init.M, init.P), error_weights(p, k)
    erf_flow(om, p, v, 1.0, 0.0)
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        erf_flow(om, p, v, 1.0, 0.0)
        best = min(best, time.perf_counter() - started)
    return best / _terms(p, k)


def _terms(p: int, k: int) -> int:
    return p * (p + 1) // 2 * ((p + k) * (p + k + 1) // 2)


def full_seconds_estimate(prm: SgdOde) -> float | None:
    """Approximate seconds of the full ODE for the compiled erf pair (None for other pairs):
    the kernel's timed cost per variance term × the terms × :func:`expected_evaluations`."""
    if not (prm.variance and isinstance(engine(prm.student, prm.teacher), ErfEngine)):
        return None
    solver = "LSODA" if prm.solver == "auto" else prm.solver
    return (_erf_term_seconds() * _terms(prm.p, prm.k)
            * expected_evaluations(prm.t_max, solver, prm.dt))


def choose_reduction(prm: SgdOde) -> str:
    """The description ``reduction="auto"`` stands for.

    "full" up to p = 64 or with ``variance_samples``; above, "quadratic" when both
    activations have degree ≤ 2 (not spherical, no trained second layer) and d < 100 (exact;
    its cost grows like d³, not with p); else "full" when its
    memory estimate fits the available memory and (erf student and teacher with the variance
    term, the case with a time estimate) its time estimate is below AUTO_MAX_SECONDS; otherwise
    "wide" when d ≥ 100 and γ_a = 0, and otherwise a ParameterError (the wide reduction assumes
    uncorrelated orthogonal parts there; an explicit "wide" at d < 100 warns).
    """
    from twolayer.sgd.quadratic import applies

    closure = applies(prm.student, prm.teacher) and not prm.spherical and prm.gamma_a == 0
    if prm.reduction == "wide" and prm.d < WIDE_MIN_D:
        better = ("'quadratic' (exact at any d)" if closure else
                  "'full' (its gradient terms are exact at any d)")
        warnings.warn(f"the wide reduction assumes uncorrelated orthogonal parts (d >= "
                      f"{WIDE_MIN_D}); at d = {prm.d} it is approximate: use reduction={better}",
                      UserWarning, stacklevel=4)
    if prm.reduction != "auto":
        return prm.reduction
    if prm.p <= FULL_MAX_P or (prm.variance_samples is not None and prm.variance):
        return "full"  # (with samples its variance term costs O(n p²), not O(p⁴))
    if closure and prm.d < WIDE_MIN_D:
        return "quadratic"
    n_t = time_grid(prm.t_max, prm.per_decade).size
    solver = "LSODA" if prm.solver == "auto" else prm.solver
    need, avail = memory_estimate(prm.p, prm.k, n_t, solver), available_bytes()
    fits = need <= avail
    seconds = full_seconds_estimate(prm) if fits else None
    if fits and seconds is not None and seconds <= AUTO_MAX_SECONDS:
        return "full"
    if prm.d >= WIDE_MIN_D and prm.gamma_a == 0:  # the wide reduction has no trained a
        return "wide"
    why = (f"needs about {_gib(need)} of {_gib(avail)} available" if not fits else
           f"would take about {seconds:.3g} s" if seconds is not None else
           "has no time estimate for this pair")
    wide = ("has no trained second layer (gamma_a > 0)" if prm.gamma_a > 0 else
            f"assumes d >= {WIDE_MIN_D} (uncorrelated orthogonal parts)")
    raise ParameterError(
        f"p = {prm.p} at d = {prm.d}: the full ODE {why} (auto takes it up to "
        f"{AUTO_MAX_SECONDS:g} s) and the wide reduction {wide}; choose reduction='full' "
        "explicitly, variance_samples=N (the variance term sampled, with its standard error "
        "reported), or fewer units")


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
                                                  prm.dt, Schedule.of(prm).breaks)
    return Run(ys, status, t_stop, nfev, message, solver, rtol,
               time.perf_counter() - started)


def _verdict(run: Run, risk: np.ndarray, t: np.ndarray) -> tuple[str, str]:
    """The result's status and message; a finished run whose risk is not finite has failed
    (the overlaps left the range where the integrals can be evaluated)."""
    if run.status == "failed" and run.message.startswith("the right-hand side failed"):
        return "failed", (f"{run.message}; the overlaps left the range the Gaussian integrals "
                          "handle: try a smaller init_scale, gamma or t_max")
    if run.status == "ok" and not np.all(np.isfinite(risk)):
        first = float(t[np.argmax(~np.isfinite(risk))])
        risk[t >= first] = np.nan
        message = (f"the risk is not finite from t = {first:.4g} on although the integration "
                   "finished: the overlaps left the range the Gaussian integrals handle (huge "
                   "init_scale or t_max?); try smaller values")
        warnings.warn(message, ConvergenceWarning, stacklevel=4)
        return "failed", message
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
    instead of ``Q``); "quadratic" the exact closure in (m, S) of :mod:`twolayer.sgd.quadratic`
    for degree ≤ 2 activations (any d, cost independent of p; the result has ``m`` and ``S``);
    "auto" takes full up to p = 64, quadratic above for degree ≤ 2 activations at d < 100
    (its right-hand side costs O(d³)), full where it
    fits the available memory and its time estimate is under 10 min (erf with the variance
    term), else wide for d ≥ 100 (:func:`choose_reduction`); the choice is the ``reduction``
    attribute. The full ODE needs O(p²) memory; before integrating it estimates its peak
    bytes (ParameterError beyond MemAvailable) and times one right-hand side: attributes
    ``memory_bytes_estimate``, ``rhs_seconds`` and ``seconds_estimate`` (× an approximate
    number of evaluations).
    ``solver``: a scipy ``solve_ivp`` method or "euler" (fixed step ``dt``); "auto" is LSODA
    with rtol 1e-8 for the compiled erf closed forms and RK45 with rtol 1e-6 (the accuracy of
    the quadrature) for other activations, RK45 with rtol 1e-7 for the wide reduction, LSODA
    with rtol 1e-9 for the quadratic closure. A
    blow-up (|overlaps| beyond 1e6 × their start) stops the integration: status "diverged",
    its time in ``t_stop``, NaN afterwards, and a
    :class:`DivergenceWarning`. ``batch``, ``gamma_a``, ``weight_decay`` and ``schedule``: the
    extensions of the module docstring; with ``gamma_a`` > 0 (full ODE only) the result also
    holds the second layer ``a`` (t, j).
    """
    reduction = choose_reduction(prm)
    if prm.variance_samples is not None and reduction != "full":
        raise ParameterError(f"variance_samples samples the full ODE's variance term; the "
                             f"{reduction} reduction has its own (use reduction='full')")
    if reduction == "wide":
        from twolayer.sgd.wide import integrate_wide

        ds, run = integrate_wide(prm)
    elif reduction == "quadratic":
        from twolayer.sgd.quadratic import integrate_quadratic

        ds, run = integrate_quadratic(prm)
    else:
        ds, run = _integrate_full(prm)
    status, message = _verdict(run, ds["risk"].values, ds["t"].values)
    return stamp(ds, prm, status, message, reduction=reduction, solver=run.solver,
                 rtol=run.rtol, t_stop=run.t_stop, nfev=run.nfev, solver_message=run.message,
                 seconds=run.seconds)


def _integrate_full(prm: SgdOde) -> tuple[xr.Dataset, Run]:
    """The full ODE in (Q, M): O(p²) states, the erf kernels or the quadrature engine."""
    eng = engine(prm.student, prm.teacher)
    erf = isinstance(eng, ErfEngine)
    solver = prm.solver if prm.solver != "auto" else ("LSODA" if erf else "RK45")
    rtol = prm.rtol if prm.rtol is not None else (1e-8 if erf else 1e-6)
    t_eval = time_grid(prm.t_max, prm.per_decade)
    init = prm.overlaps()  # its (p, k) are the parameters' (checked)
    sampled = prm.variance_samples is not None and prm.variance
    if sampled:
        from twolayer.sgd import sampled as sampling
    extra = sampling.memory_bytes(prm.variance_samples, prm.p + prm.k) if sampled else 0.0
    # refused before drawing p × d weights that cannot fit
    need = check_memory(prm.p, prm.k, t_eval.size, solver, prm.d if init is None else None,
                        extra)
    if init is None:
        init = initial_overlaps(prm.p, prm.k, prm.d, prm.seed, prm.init_scale, prm.spherical)
    if not isinstance(init, Overlaps):
        raise ParameterError("reduced overlaps (M, q, P) start only reduction='wide'")
    p, k = init.p, init.k
    if prm.spherical and not np.allclose(np.diag(init.Q), 1.0, atol=1e-8):
        raise ParameterError("the spherical ODE needs diag(Q) = 1 at the start")
    if sampled:  # with the estimate's standard error at the start (once)
        eng = sampling.SampledEngine(eng, prm.variance_samples, p + k, prm.seed)
        eng.variance(omega_of(init.Q, init.M, init.P), p, prm.noise, with_se=True)
    system = _System(eng, init.P, p, prm.gamma, prm.noise, prm.variance, prm.spherical,
                     prm.batch, prm.gamma_a, prm.weight_decay, Schedule.of(prm))
    y0 = system.pack(init.Q, init.M, np.ones(p))
    units = np.r_[0, p:p + k]  # one student: loads a compiled kernel before the timing
    eng.flow(system.omega[np.ix_(units, units)], 1, prm.noise, system.var_coef,
             None if system.a_coef == 0 else np.ones(1))
    rhs_seconds = _time_rhs(system.rhs, y0)
    run = run_solver(system.rhs, y0, t_eval, prm, solver, rtol)
    done = np.all(np.isfinite(run.ys), axis=0)
    risk = np.full(t_eval.size, np.nan)
    om = system.omegas(run.ys[:, done])
    a_t = run.ys[-p:, done].T if system.a_coef else None  # (n_done, p)
    if om.shape[0]:
        risk[done] = eng.risk(om, p, a_t)
    Qs = np.full((t_eval.size, p, p), np.nan)
    Ms = np.full((t_eval.size, p, k), np.nan)
    Qs[done] = om[:, :p, :p]
    Ms[done] = om[:, :p, p:]
    data = {"risk": ("t", risk), "Q": (("t", "j", "l"), Qs), "M": (("t", "j", "r"), Ms),
            "P": (("r", "s"), init.P)}
    if a_t is not None:
        As = np.full((t_eval.size, p), np.nan)
        As[done] = a_t
        data["a"] = (("t", "j"), As)
    ds = xr.Dataset(data, coords={"t": t_eval})
    ds.attrs.update(memory_bytes_estimate=need, rhs_seconds=rhs_seconds,
                    seconds_estimate=rhs_seconds * expected_evaluations(prm.t_max, solver, prm.dt))
    if sampled:
        ds.attrs["variance_rel_se"] = eng.rel_se
    return ds, run


def _time_rhs(rhs, y0) -> float:
    """Seconds of one right-hand side at the start (the best of up to 5 when it is quick)."""
    best = math.inf
    for _ in range(5):
        started = time.perf_counter()
        rhs(0.0, y0)
        best = min(best, time.perf_counter() - started)
        if best > 0.05:
            break
    return best
