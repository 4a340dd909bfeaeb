"""Exact closure of one-pass SGD for activations of degree ≤ 2, at any d (cost independent of p).

Model 2 (Arnaboldi et al. 2023, arXiv 2302.05882v1, Eqs. 1–5): x ~ N(0, I_d), student
ŷ = (1/p) Σ_j σ(λ_j), λ_j = w_j·x/√d, teacher y = (1/k) Σ_r σ⋆(ν_r) + √Δ ξ, one step
w_j ← w_j − (γ/p) e σ'(λ_j) x/√d with e = ŷ − y, time t = ν·γ/(p·d), excess risk
R = ½E(ŷ − y*)².

For σ(z) = a0 + a1 z + a2 z² and σ⋆(z) = b0 + b1 z + b2 z² the network depends on W only through

    m = (1/p) Σ_j w_j ∈ R^d,   S = WᵀW/p ∈ R^{d×d}   (teacher: m⋆ = (1/k) Σ_r w⋆_r, S⋆ = W⋆ᵀW⋆/k).

With u = m/√d, U = S/d (likewise v, V for the teacher) every quantity is a quadratic form in x,
q = c + hᵀx + xᵀHx, written (c, h, H):

    ŷ = (a0, a1 u, a2 U),   y* = (b0, b1 v, b2 V),   e* = (a0 − b0, a1 u − b1 v, a2 U − b2 V),
    σ̄' = (1/p) Σ_j σ'(λ_j) = (a1, 2a2 u, 0),   G = (1/p) Σ_j σ'(λ_j)² = (a1², 4a1a2 u, 4a2² U),

and one step maps (u, U) exactly to

    Δu = −(γ/(pd)) e σ̄' x,
    ΔU = −(γ/(pd)) e (g xᵀ + x gᵀ) + (γ/(pd))² e² G x xᵀ,   g = a1 u + 2a2 U x.

Dividing the expected step by dt = γ/(pd) gives the ODE (the law of large numbers over the
pd/γ steps per unit of t; exact drift at any d, ξ averaged out):

    du/dt = −E[e* σ̄' x]
    dU/dt = −(D + Dᵀ) + (γ/(pd)) (E[e*² G x xᵀ] + Δ E[G x xᵀ]),
    D = a1 u E[e* x]ᵀ + 2a2 U E[e* x xᵀ],

R = ½E[e*²]. The variance term keeps |x|²/d exactly (it is (γ/p) E[e² σ'_j σ'_l |x|²/d] per
pair), where the full ODE of :mod:`twolayer.sgd.ode` takes |x|²/d = 1, exact as d → ∞. At small
d they differ: for square σ and σ⋆ the integrand is homogeneous of degree 6 and
E[f |x|²] = (d + 6) E[f], so the exact term is (d + 6)/d times the full ODE's (3× at d = 3).
The Gaussian moments are closed forms (Stein's lemma E[x f] = E[∇f],
E[x xᵀ f] = E[f] I + E[∇∇ᵀf], and the joint cumulants of quadratic forms
κ(q1, q2) = h1·h2 + 2 tr H1H2, κ(q1, q2, q3) = 8 tr H1H2H3 + 2 Σ_cyc h_iᵀH_j h_l), up to the
8th moment in x of the variance term. Cost per right-hand side O(d³), whatever p.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import xarray as xr

from twolayer import activations
from twolayer.errors import ModelAssumptionError, ParameterError
from twolayer.params import SgdOde
from twolayer.sgd.init import Overlaps, factor_overlaps, initial_weights
from twolayer.sgd.ode import Run, run_solver, time_grid
from twolayer.sgd.schedule import Schedule

__all__ = ["Quad", "applies", "coefficients", "integrate_quadratic", "risk_of_weights",
           "summaries"]


# ------------------------------------------------------------ Gaussian moments, x ~ N(0, I_d)
class Quad(NamedTuple):
    """The quadratic form c + hᵀx + xᵀHx (H symmetric)."""

    c: float
    h: np.ndarray
    H: np.ndarray


def mean(q: Quad) -> float:
    """E[q] = c + tr H."""
    return q.c + float(np.trace(q.H))


def cumulant2(a: Quad, b: Quad) -> float:
    """Cov(a, b) = h_a·h_b + 2 tr(H_a H_b)."""
    return float(a.h @ b.h) + 2.0 * float(np.sum(a.H * b.H))


def cumulant3(a: Quad, b: Quad, c: Quad) -> float:
    """κ(a, b, c) = 8 tr(H_a H_b H_c) + 2 (h_bᵀH_a h_c + h_aᵀH_b h_c + h_aᵀH_c h_b)."""
    return (8.0 * float(np.sum((a.H @ b.H) * c.H))
            + 2.0 * float(b.h @ a.H @ c.h + a.h @ b.H @ c.h + a.h @ c.H @ b.h))


def moment3(a: Quad, b: Quad, c: Quad) -> float:
    """E[a b c] from the cumulants."""
    ma, mb, mc = mean(a), mean(b), mean(c)
    return (ma * mb * mc + ma * cumulant2(b, c) + mb * cumulant2(a, c) + mc * cumulant2(a, b)
            + cumulant3(a, b, c))


def x_moment(q: Quad) -> np.ndarray:
    """E[q x] = E[∇q] = h."""
    return q.h


def xx_moment(q: Quad) -> np.ndarray:
    """E[q x xᵀ] = E[q] I + 2H."""
    return mean(q) * np.eye(q.h.size) + 2.0 * q.H


def x_moment2(a: Quad, b: Quad) -> np.ndarray:
    """E[a b x] = E[∇(ab)] = E[b] h_a + E[a] h_b + 2H_a h_b + 2H_b h_a."""
    return mean(b) * a.h + mean(a) * b.h + 2.0 * (a.H @ b.h + b.H @ a.h)


def xx_moment3(a: Quad, b: Quad, c: Quad) -> np.ndarray:
    """E[a b c x xᵀ] = E[abc] I + E[∇∇ᵀ(abc)] (Stein), with ∇q = h + 2Hx, ∇∇ᵀq = 2H:

    ∇∇ᵀ(abc) = Σ_i 2H_i q_j q_l + Σ_{i≠j} ∇q_i ∇q_jᵀ q_l ({i, j, l} = {a, b, c}), and
    E[∇q_i ∇q_jᵀ q_l] = E[q_l] h_i h_jᵀ + 2h_i (H_j h_l)ᵀ + 2(H_i h_l) h_jᵀ
                        + 4H_i (E[q_l] I + 2H_l) H_j.
    """
    qs = (a, b, c)
    out = moment3(a, b, c) * np.eye(a.h.size)
    for i in range(3):
        qj, ql = qs[(i + 1) % 3], qs[(i + 2) % 3]
        out += 2.0 * qs[i].H * (mean(qj) * mean(ql) + cumulant2(qj, ql))
    for i in range(3):
        for j in range(3):
            if i == j:
                continue
            qi, qj, ql = qs[i], qs[j], qs[3 - i - j]
            ml = mean(ql)
            out += (ml * np.outer(qi.h, qj.h) + 2.0 * np.outer(qi.h, qj.H @ ql.h)
                    + 2.0 * np.outer(qi.H @ ql.h, qj.h)
                    + 4.0 * qi.H @ (ml * np.eye(a.h.size) + 2.0 * ql.H) @ qj.H)
    return out


# ------------------------------------------------------------------------- the closure
def applies(student: str | activations.Activation, teacher: str | activations.Activation
            ) -> bool:
    """Whether both activations are built-in polynomials of degree ≤ 2 (the closure is exact)."""
    return all((activations.get(a).degree or 3) <= 2 for a in (student, teacher))


def coefficients(name: str | activations.Activation) -> tuple[float, float, float]:
    """(c0, c1, c2) with σ(z) = c0 + c1 z + c2 z², from the Hermite coefficients μ_k."""
    act = activations.get(name)
    name = act.name
    if act.degree is None or act.degree > 2:
        raise ModelAssumptionError(
            f"the quadratic closure needs polynomial activations of degree <= 2 (square, "
            f"linear, he1, he2); {name!r} is not one: use reduction='full' or 'wide' (d >= 100)")
    mu0, mu1, mu2 = act.mu(0), act.mu(1), act.mu(2)
    return mu0 - mu2 / 2.0, mu1, mu2 / 2.0


def summaries(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, S) = ((1/n) Σ_i w_i, WᵀW/n) of the rows of ``weights`` (n, d)."""
    n = weights.shape[0]
    return weights.mean(axis=0), weights.T @ weights / n


class _Closure:
    """The ODE in (u, U) = (m/√d, S/d): packing, right-hand side, risk."""

    def __init__(self, student: str, teacher: str, m_star, S_star, d: int, p: int,
                 gamma: float, noise: float, variance: bool, batch: int = 1, decay: float = 0.0,
                 schedule: Schedule | None = None):
        self.a, self.b = coefficients(student), coefficients(teacher)
        self.d, self.noise = d, noise
        self.v, self.V = m_star / math.sqrt(d), S_star / d
        self.var_coef = gamma / (p * d * batch) if variance else 0.0
        self.decay = decay
        self.schedule = None if schedule is None or schedule.constant else schedule
        self.iu = np.triu_indices(d)

    def pack(self, m, S) -> np.ndarray:
        return np.concatenate([m / math.sqrt(self.d), (S / self.d)[self.iu]])

    def unpack(self, y) -> tuple[np.ndarray, np.ndarray]:
        """(u, U) from the state vector."""
        d = self.d
        U = np.zeros((d, d))
        U[self.iu] = y[d:]
        return y[:d], U + np.triu(U, 1).T

    def error(self, u, U) -> Quad:
        """e* = ŷ − y* as a quadratic form."""
        (a0, a1, a2), (b0, b1, b2) = self.a, self.b
        return Quad(a0 - b0, a1 * u - b1 * self.v, a2 * U - b2 * self.V)

    def rhs(self, t, y) -> np.ndarray:
        u, U = self.unpack(y)
        _, a1, a2 = self.a
        e = self.error(u, U)
        dslope = Quad(a1, 2.0 * a2 * u, np.zeros_like(U))  # σ̄' = (1/p) Σ_j σ'(λ_j)
        du = -x_moment2(e, dslope)
        D = a1 * np.outer(u, x_moment(e)) + 2.0 * a2 * U @ xx_moment(e)
        dU = -(D + D.T)
        if self.decay:  # w ← (1 − γω/(pd)) w: −ω m, −2ω S
            du, dU = du - self.decay * u, dU - 2.0 * self.decay * U
        g = 1.0 if self.schedule is None else self.schedule.factor(t)
        if self.var_coef:
            G = Quad(a1 * a1, 4.0 * a1 * a2 * u, 4.0 * a2 * a2 * U)  # (1/p) Σ_j σ'(λ_j)²
            dU += g * self.var_coef * (xx_moment3(e, e, G) + self.noise * xx_moment(G))
        return g * np.concatenate([du, dU[self.iu]])

    def risk(self, u, U) -> float:
        """R = ½E[e*²] = ½(E[e*]² + Var e*)."""
        e = self.error(u, U)
        return 0.5 * (mean(e) ** 2 + cumulant2(e, e))


def risk_of_weights(student: str, teacher: str, weights: np.ndarray,
                    teacher_weights: np.ndarray) -> float:
    """R = ½E(ŷ − y*)² of weights (p, d) and (k, d) through their summaries: O(p·d²)."""
    d = weights.shape[1]
    system = _Closure(student, teacher, *summaries(teacher_weights), d=d, p=weights.shape[0],
                      gamma=1.0, noise=0.0, variance=False)
    return system.risk(*system.unpack(system.pack(*summaries(weights))))


def start(prm: SgdOde) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(m, S, m⋆, S⋆) at t = 0: of the weights :func:`twolayer.sgd.simulate` draws, or of
    weights in R^d with the ``init`` overlaps (the Gram [[Q, M], [Mᵀ, P]] factored; rank ≤ d)."""
    init = prm.overlaps()
    if init is None:
        student, teacher = initial_weights(prm.p, prm.k, prm.d, prm.seed, prm.init_scale, False)
    elif isinstance(init, Overlaps):
        student, teacher = factor_overlaps(init, prm.d)
    else:
        raise ParameterError("the quadratic closure starts from full overlaps (Q, M, P)")
    return (*summaries(student), *summaries(teacher))


def integrate_quadratic(prm: SgdOde) -> tuple[xr.Dataset, Run]:
    """The closure ODE in (m, S) (``twolayer.sgd.ode(..., reduction="quadratic")``).

    Conventions as the full ODE (t = ν·γ/(p·d), ``variance`` the (γ/p) term, ``noise`` Δ; a
    mini-batch b divides the variance term by b, weight decay ω adds −ω m and −2ω S, a schedule
    g(t) multiplies the drift by g and the variance term by g²; γ_a > 0 is refused). The
    result has R(t), m(t) = (1/p) Σ_j w_j (t, i) and S(t) = WᵀW/p (t, i, i2), and the teacher's
    ``m_teacher`` = (1/k) Σ_r w⋆_r and ``S_teacher`` = W⋆ᵀW⋆/k. Solver "auto": LSODA, rtol 1e-9.
    The spherical variant is not closed in (m, S) and is refused.
    """
    coefficients(prm.student), coefficients(prm.teacher)  # refuses other activations
    if prm.spherical:
        raise ModelAssumptionError("the spherical variant is not closed in (m, S): use "
                                   "reduction='full'")
    if prm.gamma_a > 0:
        raise ModelAssumptionError("a trained second layer (gamma_a > 0) weighs the units "
                                   "unequally, which (m, S) cannot follow: use reduction='full'")
    m0, S0, m_star, S_star = start(prm)
    system = _Closure(prm.student, prm.teacher, m_star, S_star, prm.d, prm.p, prm.gamma,
                      prm.noise, prm.variance, prm.batch, prm.weight_decay, Schedule.of(prm))
    solver = "LSODA" if prm.solver == "auto" else prm.solver
    rtol = 1e-9 if prm.rtol is None else prm.rtol
    t_eval = time_grid(prm.t_max, prm.per_decade)
    run = run_solver(system.rhs, system.pack(m0, S0), t_eval, prm, solver, rtol)
    d = prm.d
    risk = np.full(t_eval.size, np.nan)
    ms = np.full((t_eval.size, d), np.nan)
    Ss = np.full((t_eval.size, d, d), np.nan)
    for i in np.flatnonzero(np.all(np.isfinite(run.ys), axis=0)):
        u, U = system.unpack(run.ys[:, i])
        risk[i] = system.risk(u, U)
        ms[i], Ss[i] = math.sqrt(d) * u, d * U
    ds = xr.Dataset({"risk": ("t", risk), "m": (("t", "i"), ms), "S": (("t", "i", "i2"), Ss),
                     "m_teacher": ("i", m_star), "S_teacher": (("i", "i2"), S_star)},
                    coords={"t": t_eval})
    return ds, run
