"""Large-width reduced ODE: state M (p × k) and q_j, cost ∝ p.

Arnaboldi et al. 2023 (arXiv 2302.05882v1, §3.4). Each student field splits into its part in the
teacher span and an orthogonal part (Eqs. 17–20), λ_j = a_j·ν + √q_j z_j with ν the teacher
fields, a_j = P⁻¹M_jᵀ and q_j = Q_jj − M_j P⁻¹ M_jᵀ = (Q⊥)_jj. The reduction keeps the orthogonal
parts uncorrelated (z_j i.i.d. N(0, 1), independent of ν), i.e. the large-d overlap matrix of
Eq. 26,

    Q = M P⁻¹ Mᵀ + diag(q),

whose error is O(1/√p + 1/√d) (their Lemma 4 and Theorem 5), plus the finite-d term below
(``finite_d``, by default below d = 1000; off: exactly this d = ∞ form). The paper's reduced ODE
(Eq. 28) is derived from gradient flow (γ/p ≪ 1); the (γ/p) variance term below, and the
spherical variant, are this package's extensions of it, as are mini-batches (the variance term ×
1/b), weight decay (−ω M, −2ω q) and learning-rate schedules (drift × g(t), variance × g(t)²); a
trained second layer is not reduced (ParameterError: use the full ODE).

Given ν the units are then independent, and every expectation of the full ODE becomes a
k-dimensional integral over ν of one-unit Gaussian moments in z. With e = y* − ŷ, F(ν) = E[ŷ | ν],
μ_j(ν) = E[e + σ(λ_j)/p | ν] (the error without unit j) and Var_j(ν) its conditional variance,

    dM_jr/dt = E_ν[ν_r (μ_j E_z σ'_j − E_z[σσ']_j / p)]
    dq_j/dt  = 2 q_j E_ν[μ_j E_z σ''_j − E_z[σσ'' + σ'²]_j / p]
               + (γ/p) E_ν[(μ_j² + Var_j + Δ) E_z σ'_j² − 2μ_j E_z[σσ'²]_j / p + E_z[σ²σ'²]_j / p²]

(Stein's lemma in z_j gives the q_j drift), and the excess risk is
R = ½ E_ν[(y* − F)² + Σ_l Var_z σ(λ_l) / p²] (Eq. 25 at the Q of Eq. 26, less the noise floor
Δ/2). Every term is exact for Q of this form, including
the 1/p self-terms. What the reduction drops is the off-diagonal orthogonal overlap
Q⊥_jl (j ≠ l): O(1/√d) at a random start, generated at rate O(1/p + γ/p²) per pair by the full
flow. Its effect on each unit is O(1/p + γ/p + 1/√(pd)), so the reduction is the exact limit
p → ∞ with γ/p → 0 (mean-field) and d ≫ 1, and a controlled approximation at large finite p.

Finite d (``finite_d``: by default below d = 1000). The orthogonal parts of p students live in d − k
dimensions: for weights drawn i.i.d. (or on the sphere) Q⊥_jl = √(q_j q_l) Z_jl with Z_jl the
cosine of two independent uniform directions of R^(d−k), so E Z = 0 and E Z² = 1/(d − k) exactly
(E Z⁴ = 3/((d − k)(d − k + 2))). The authors' reference code (IdePHICS/DimensionlessDynamicsSGD,
its large-p ODEs with ``offdiagonal=True``) keeps this form along the flow and averages over
Z: in closed form for the square activation (their risk and q-flow gain terms ∝ q_j Σ_{l≠j} q_l
/(d − k)), by quadrature over the law of Z for erf. Here the average is taken to second order,
for any activation, through the Hermite (Mehler) expansion of a pair given ν,

    E[f(λ_j) g(λ_l) | ν] = Σ_n (Q⊥_jl)^n / n! · E_z f^(n)(λ_j) · E_z g^(n)(λ_l),

whose n = 1 term averages to zero and whose n = 2 term gives (1/(2(d − k))) K_j[f] K_l[g], with
the curvature K[f] = q E_z f''(λ) = E_z[f(λ)(z² − 1)] (``_Curv``: closed forms for linear,
square, relu and erf, else the z-rule). With c = 1/(d − k) and Σ' the sum over l ≠ j:

    R   += (c/(4p²)) E_ν[(Σ_l K_l[σ])² − Σ_l K_l[σ]²]
    dM_jr += −(c/(2p)) E_ν[ν_r K_j[σ'] Σ'K_l[σ]]
    dq_j  += −(c/p) E_ν[(q_j K_j[σ''] + 2 K_j[σ]) Σ'K_l[σ]]

(the dq term: Stein's lemma in z_j now also differentiates the units correlated with j), and
the variance term's E[σ'_j² e²] gains (c/(2p²)) E σ'_j² [(Σ'K[σ])² − Σ'K[σ]²] − (c/p) K_j[σ'²]
(μ_j Σ'K[σ] + Σ' K_l[σ] E σ_l / p) + (c/p²) (½ K_j[σ'²] Σ'K[σ²] + K_j[σσ'²] Σ'K[σ]). These terms
are O(1/(d − k)) and do not vanish as p grows (Σ_{j≠l} has p² terms); the next even order is
O(1/(d − k)²). The linear activation has K = 0 (no term); at a random start odd activations have
E σ''(λ_j | ν) odd in the student means, so Σ_l K_l[σ] cancels and the term matters once the
students align with the teacher; for relu and square it matters from the start. Checked
(tests/test_sgd_wide_finite_d.py): at d = 20 the d = ∞ form's risk at t = 0 is biased low by
many standard errors over weight draws (square −8%, relu −2% of R) and the finite-d one agrees
within them; the full flow at ±1/√(d − k) off-diagonals changes by the finite-d term to 3%; the
full ODE's risk from drawn weights minus that from the same start with Q⊥ made diagonal is
the finite-d term's change of the wide risk to 15% along the run (relu, d = 20), and E Z² of
the full flow stays 1/(d − k) within 2% (erf, p = d = 50, t ≤ 30). Measured
(``benchmarks/sgd.py wide_finite_d``): square against the exact closure of
:mod:`twolayer.sgd.quadratic`, p = 1000, to t = 100, largest relative risk error 1.70 → 0.08 at
d = 3, 0.33 → 0.15 at d = 20, 0.24 → 0.17 at d = 50. Against the full ODE at p = 100–150 the
O(1/p) gap of the reduction dominates from t ≈ 1 on: the term reproduces the full ODE's own
finite-d effect (erf at t = 10 within 5%, relu along the run within 4–27% of its largest size)
but at d ≥ 50 it adds to a gap of the same sign (relu, largest |ΔR|/R(0) 0.9–1.2% → 1.3%;
at d = 20 3.9% → 1.1%). The assumption is about the start. A start drawn
from the parameters uses their d; full overlaps given as ``init`` set the spread themselves,
mean_{j≠l} Q⊥_jl²/(q_j q_l) in place of 1/(d − k) (the d parameter is then not used; a start
with diagonal Q⊥ gets the d = ∞ form), unless ``finite_d=False``.

Quadrature: z-moments in closed form for linear, square, relu and erf (:func:`_erf`; then
``n_z`` is not used), Gauss–Hermite for he1–he4 (exact), and the trapezoid rule in x-units
(:func:`twolayer.gaussian.trapezoid_rule`, spaced for the largest √q_j) for other smooth
activations. The ν-integral, ν = L u with L Lᵀ = P: tensor
Gauss–Hermite (``n_nu`` nodes per axis) when both activations are polynomial (exact); for a
kinked teacher (relu), Gauss–Legendre on each side of the kinks ν_r = 0 (needs P diagonal);
otherwise a tensor trapezoid rule in u, each axis spaced for the largest coefficient of u_c in a
teacher field or a student mean, rebuilt from M at every call, nodes inside the ball |u| ≤ 7.
Gauss–Hermite with a fixed number of nodes converges slowly once a field's std is ≳ 1 (tanh'
has poles at ±iπ/2): 24 z-nodes are 20% off for E[tanh² tanh'²] at std 1.5, and the right-hand
side with the former defaults was off by 1e-3 to 40% at diag Q ≈ 2–16; with the trapezoid
rules it agrees with the full ODE to ≤ 4e-7 (tests). ``spherical=True`` keeps Q_jj = 1
(q_j = 1 − M_j P⁻¹ M_jᵀ).
"""

from __future__ import annotations

import math
from functools import cache
from typing import NamedTuple

import numpy as np
import xarray as xr
from numpy.polynomial.legendre import leggauss
from scipy import special

from twolayer import _validate as check
from twolayer import activations
from twolayer.activations import Activation
from twolayer.errors import ModelAssumptionError, ParameterError
from twolayer.gaussian import (
    TRAPEZOID_H_X,
    TRAPEZOID_RADIUS,
    hermite_rule,
    tensor_rule,
    trapezoid_rule,
)
from twolayer.params import SgdOde
from twolayer.sgd import _erf_moments
from twolayer.sgd.init import Overlaps, initial_weights
from twolayer.sgd.ode import Run, run_solver, time_grid
from twolayer.sgd.schedule import Schedule

__all__ = ["Reduced", "integrate_wide", "reduced_overlaps", "wide_system"]

_SQ2PI = math.sqrt(2.0 * math.pi)
_L = 10.0  # half-width of the split rule: the Gaussian mass beyond 10 is below 1e-22
# x-spacing of the trapezoid ν-rule for k ≥ 3, where a tensor rule at the z-rule's h_x = 0.35
# would be costly. Measured against the full ODE (tanh, sigmoid, erf, softplus/sin, k = 3,
# diag Q ≤ 16): ≤ 4e-7 relative on the right-hand side (1e-8 at h_x = 0.35), a third of the nodes.
_NU_H_X_HIGH_K = 0.5
# x-spacing of the trapezoid ν-rule when every ν-integrand is entire: the erf student's z-moments
# in closed form (Gaussians, erf and Owen's T of m/√(1+q)) and an erf or polynomial teacher.
# Measured against h_x = 0.35 (erf/erf, p = 100, k = 2, t = 0 and 10): right-hand side within
# 2e-10 of its largest entry, risk within 4e-8 (relative), with 429 nodes instead of 1241.
_NU_H_X_ENTIRE = 0.6


class Reduced(NamedTuple):
    """Reduced overlaps: M (p × k), q (p,) = Q_jj − M_j P⁻¹ M_jᵀ ≥ 0, P (k × k)."""

    M: np.ndarray
    q: np.ndarray
    P: np.ndarray


def _span(A: np.ndarray, P_inv: np.ndarray, B: np.ndarray | None = None) -> np.ndarray:
    """diag(A P⁻¹ Bᵀ) over the last two axes (B = A: each student's squared norm in the span)."""
    return np.einsum("...jr,rs,...js->...j", A, P_inv, A if B is None else B)


def reduced_overlaps(student: np.ndarray, teacher: np.ndarray) -> Reduced:
    """(M, q, P) of weights (p, d) and (k, d), without forming the p × p matrix Q."""
    d = student.shape[-1]
    M = student @ teacher.T / d
    P = teacher @ teacher.T / d
    q = np.einsum("jd,jd->j", student, student) / d - _span(M, np.linalg.inv(P))
    return Reduced(M, np.maximum(q, 0.0), P)


class _Moments(NamedTuple):
    """One-unit moments E_z[·] of X = m + s z: σ, σ', σ'', σ'², σσ', σσ'', σσ'², σ²σ'², σ²."""

    g0: np.ndarray
    g1: np.ndarray
    g2: np.ndarray
    h: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    kk: np.ndarray
    ll: np.ndarray
    w2: np.ndarray


def _linear(m, s):
    one, zero, x2 = np.ones_like(m), np.zeros_like(m), m * m + s * s
    return _Moments(m, one, zero, one, m, zero, m, x2, x2)


def _square(m, s):
    m2, s2 = m * m, s * s
    x2 = m2 + s2
    x3 = m * (m2 + 3 * s2)
    x4 = m2 * (m2 + 6 * s2) + 3 * s2 * s2
    x6 = m2 * (m2 * (m2 + 15 * s2) + 45 * s2 * s2) + 15 * s2 * s2 * s2
    return _Moments(x2, 2 * m, np.full_like(m, 2.0), 4 * x2, 2 * x3, 2 * x2, 4 * x4, 4 * x6, x4)


def _relu(m, s):
    s = np.maximum(s, 1e-150)
    r = m / s
    cdf, pdf = special.ndtr(r), np.exp(-0.5 * r * r) / _SQ2PI
    x1 = m * cdf + s * pdf  # E[X θ(X)]
    x2 = (m * m + s * s) * cdf + m * s * pdf  # E[X² θ(X)]
    return _Moments(x1, cdf, pdf / s, cdf, x1, np.zeros_like(m), x1, x2, x2)


def _tilt(m, v, a):
    """E[e^{−aX²/2} g(X)] = K·E[g(Y)] for X ~ N(m, v): returns (K, mean of Y, variance of Y)."""
    r = 1.0 + a * v
    return np.exp(-0.5 * a * m * m / r) / np.sqrt(r), m / r, v / r


def _erf_mean(m, v, square: bool = True):
    """E erf(Y/√2) and (``square``) E erf(Y/√2)² for Y ~ N(m, v), the second through Owen's T:
    E Φ(Y)² = Φ₂(h, h; v/(1 + v)) = Φ(h) − 2T(h, 1/√(1 + 2v)), h = m/√(1 + v)."""
    h = m / np.sqrt(1.0 + v)
    mean = special.erf(h / math.sqrt(2.0))
    if not square:
        return mean, None
    return mean, 1.0 - 8.0 * _erf_moments.owens_t_rows(h, 1.0 / np.sqrt(1.0 + 2.0 * v))


def _erf(m, s):
    """σ = erf(x/√2), σ' = √(2/π) e^{−x²/2}, σ'' = −xσ': every moment by Gaussian tilting —
    e^{−X²/2} (σ', one factor) and e^{−X²} (σ'²) turn N(m, s²) into another Gaussian — and
    E erf(Y/√2)² = 1 − 8 T(h, 1/√(1 + 2v)), h = m/√(1 + v) (Owen's T)."""
    v = s * s
    c = math.sqrt(2.0 / math.pi)
    k1, m1, v1 = _tilt(m, v, 1.0)
    k2, m2, v2 = _tilt(m, v, 2.0)
    e0, e00 = _erf_mean(m, v)
    e1, _ = _erf_mean(m1, v1, square=False)
    e2, e22 = _erf_mean(m2, v2)
    g1 = c * k1
    ysy = m1 * e1 + v1 * c * np.exp(-0.5 * m1 * m1 / (1.0 + v1)) / np.sqrt(1.0 + v1)  # E[Yσ(Y)]
    h = c * c * k2
    return _Moments(e0, g1, -g1 * m1, h, g1 * e1, -g1 * ysy, h * e2, h * e22, e00)


def _erf_fused(m, s):
    """:func:`_erf` by the compiled pass of :mod:`twolayer.sgd._erf_moments` (same values)."""
    return _Moments(*_erf_moments.erf_moments(m, s))


# by closed_form
_CLOSED_MOMENTS = {"linear": _linear, "square": _square, "relu": _relu, "erf": _erf_fused}


def _closed_moments(act: Activation):
    """The closed-form z-moments of ``act`` (a built-in linear, square or relu), or None."""
    return _CLOSED_MOMENTS.get(act.closed_form)


class _Curv(NamedTuple):
    """Curvatures q·∂²_m E_z[f(m + √q z)] = q E f''(X) = E[f(X)(z² − 1)] of f = σ (``k0``),
    σ' (``k1``) and σ'² (``kh``), and ``k2q`` = q² E σ''''(X): the one-unit factors of the
    second-order term of the Hermite expansion in the off-diagonal orthogonal overlaps; for the
    variance term also those of σ² (``kw2``) and σσ'² (``kkk``) (None when not asked for)."""

    k0: np.ndarray
    k1: np.ndarray
    k2q: np.ndarray
    kh: np.ndarray
    kw2: np.ndarray | None = None
    kkk: np.ndarray | None = None


def _curv_linear(m, s, var=False):
    zero = np.zeros_like(m)
    return _Curv(zero, zero, zero, zero, *((2.0 * s * s + zero, zero) if var else ()))


def _curv_square(m, s, var=False):
    q, zero = s * s, np.zeros_like(m)
    x2 = m * m + q
    # σ'' = 2, (σ'²)'' = 8, (σ²)'' = 12x², (σσ'²)'' = 48x²
    return _Curv(2.0 * q + zero, zero, zero, 8.0 * q + zero,
                 *((12.0 * q * x2, 48.0 * q * x2) if var else ()))


def _curv_relu(m, s, var=False):
    """σ'' = δ, σ''' = δ', σ'''' = δ'', (σ'²)'' = δ', (σ²)'' = 2θ, (σσ'²)'' = δ: with r = m/s,
    q E δ(X) = s φ(r), q E δ'(X) = −r φ(r), q² E δ''(X) = s (r² − 1) φ(r)."""
    s = np.maximum(s, 1e-150)
    r = m / s
    pdf = np.exp(-0.5 * r * r) / _SQ2PI
    k0, k1 = s * pdf, -r * pdf
    return _Curv(k0, k1, s * (r * r - 1.0) * pdf, k1,
                 *((2.0 * s * s * special.ndtr(r), k0) if var else ()))


def _curv_erf(m, s, var=False):
    """σ' = √(2/π) e^{−x²/2}: σ'' = −xσ', σ''' = (x² − 1)σ', σ'''' = (3x − x³)σ' and
    (σ'²)'' = (4x² − 2)σ'², each by the Gaussian tilt of :func:`_tilt`. ``var``: (σ²)'' =
    2σ'² + 2σσ'', and (σσ'²)'' = −5xσ'³ + (4x² − 2)σσ'², the last through E[Y² σ(Y)] =
    (m² + v) Eσ + 2mv Eσ' + v² Eσ'' for the tilted Y ~ N(m, v)."""
    v = s * s
    c = math.sqrt(2.0 / math.pi)
    k1, m1, v1 = _tilt(m, v, 1.0)
    k2, m2, v2 = _tilt(m, v, 2.0)
    g1, h = c * k1, c * c * k2
    extra = ()
    if var:
        r1 = 1.0 + v1  # E σσ'' = −E σ'(X) · E[Y σ(Y)], Y ~ N(m1, v1)
        ysy = (m1 * special.erf(m1 / np.sqrt(2.0 * r1))
               + v1 * c * np.exp(-0.5 * m1 * m1 / r1) / np.sqrt(r1))
        kw2 = 2.0 * v * (h - g1 * ysy)
        k3, m3, _ = _tilt(m, v, 3.0)
        r2 = 1.0 + v2
        u = c * np.exp(-0.5 * m2 * m2 / r2) / np.sqrt(r2)  # E σ'(Y), Y ~ N(m2, v2)
        e2 = special.erf(m2 / np.sqrt(2.0 * r2))  # E σ(Y)
        y2s = (m2 * m2 + v2) * e2 + m2 * v2 * u * (2.0 - v2 / r2)  # E[Y² σ(Y)]
        kkk = v * (-5.0 * c**3 * k3 * m3 + h * (4.0 * y2s - 2.0 * e2))
        extra = (kw2, kkk)
    return _Curv(-v * g1 * m1, v * g1 * (m1 * m1 + v1 - 1.0),
                 v * v * g1 * m1 * (3.0 - m1 * m1 - 3.0 * v1),
                 v * h * (4.0 * (m2 * m2 + v2) - 2.0), *extra)


_CLOSED_CURV = {"linear": _curv_linear, "square": _curv_square, "relu": _curv_relu,
                "erf": _curv_erf}


def _moments(act: Activation, m: np.ndarray, s: np.ndarray, n_z: int | None,
             curv: bool = False, var: bool = False):
    """Moments of X = m + s z at every (ν-node, unit): closed forms, else Gauss–Hermite with
    ``n_z`` nodes, or (``n_z`` None) the trapezoid rule spaced for the largest s. ``curv``:
    (moments, :class:`_Curv`), with ``var`` its fields for the variance term too."""
    closed = _closed_moments(act)
    if closed is not None:
        mo = closed(m, s)
        return (mo, _CLOSED_CURV[act.closed_form](m, s, var)) if curv else mo
    if act.kinks:
        raise ModelAssumptionError(
            f"the large-width ODE has no rule for the kinked activation {act.name!r}"
        )
    z, w = trapezoid_rule(float(np.max(s, initial=0.0))) if n_z is None else hermite_rule(n_z)
    x = m[..., None] + s[..., None] * z
    f, f1, f2 = act.fn(x), act.deriv(x), act.deriv2(x)
    f1sq = f1 * f1
    mo = _Moments(*(a @ w for a in (f, f1, f2, f1sq, f * f1, f * f2, f * f1sq,
                                    f * f * f1sq, f * f)))
    if not curv:
        return mo
    he2 = (z * z - 1.0) * w  # E[f(X)(z² − 1)] = q E f''(X) (Stein's lemma twice)
    extra = ((f * f) @ he2, (f * f1sq) @ he2) if var else ()
    return mo, _Curv(f @ he2, f1 @ he2, s * s * (f2 @ he2), f1sq @ he2, *extra)


@cache
def _split_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre on [−L, 0] and [0, L] against the N(0, 1) density (2n nodes)."""
    t, wt = leggauss(n)
    z = np.concatenate([0.5 * _L * (t - 1), 0.5 * _L * (t + 1)])
    w = np.concatenate([wt, wt]) * 0.5 * _L * np.exp(-0.5 * z * z) / _SQ2PI
    return z, w / w.sum()


def _polar_rule(P: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """ν ~ N(0, P) in 2-D by polar coordinates, split at the angles where some ν_r = 0.

    ν = L (r cos θ, r sin θ) with L Lᵀ = P: along each ray the sign of every ν_r is fixed, so a
    teacher kinked at ν_r = 0 is smooth on each angular sector (Gauss–Legendre, n per sector)
    and along r (Gauss–Legendre on [0, L], n nodes, weight r e^{−r²/2}).
    """
    chol = np.linalg.cholesky(P)
    cuts = []
    for row in chol:  # ν_r = row · (cos θ, sin θ) = 0
        base = math.atan2(-row[0], row[1])
        cuts += [base % (2 * math.pi), (base + math.pi) % (2 * math.pi)]
    edges = np.unique(np.concatenate([[0.0, 2 * math.pi], cuts]))
    t, wt = leggauss(n)
    lo, hi = edges[:-1, None], edges[1:, None]
    theta = (0.5 * (lo + hi) + 0.5 * (hi - lo) * t).ravel()
    w_theta = (0.5 * (hi - lo) * wt).ravel() / (2 * math.pi)
    r = 0.5 * _L * (t + 1)
    w_r = 0.5 * _L * wt * r * np.exp(-0.5 * r * r)
    u = np.stack([np.cos(theta), np.sin(theta)], axis=-1)  # (n_theta, 2)
    z = (r[:, None, None] * u[None]).reshape(-1, 2)
    w = (w_r[:, None] * w_theta[None]).ravel()
    return z @ chol.T, w / w.sum()


def _nu_rule(P: np.ndarray, n: int, kinked: bool) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (N, k) and weights (N,) for E over ν ~ N(0, P)."""
    k = P.shape[0]
    diagonal = np.allclose(P, np.diag(np.diag(P)), rtol=0.0, atol=1e-14 * np.max(np.abs(P)))
    if kinked and k == 2 and not diagonal:
        return _polar_rule(P, n)
    if kinked and not diagonal:
        raise ModelAssumptionError(
            "the large-width ODE with a kinked teacher and k ≥ 3 needs P diagonal (the kinks "
            "at ν_r = 0 are then split axis by axis)"
        )
    if kinked:
        z1, w1 = _split_rule(n)
        factor = np.diag(np.sqrt(np.diag(P)))
    else:
        z1, w1 = hermite_rule(n)
        factor = np.linalg.cholesky(P)
    z, w = tensor_rule([(z1, w1)] * k)
    return z @ factor.T, w


def _trapezoid_nu_rule(chol: np.ndarray, coef: np.ndarray,
                       h_x: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ν = chol·u, u ~ N(0, I_k), by a tensor trapezoid rule in u, nodes (N, k) and weights.

    Axis c is spaced for the largest coefficient of u_c in a teacher field (a column of chol) or
    a student's conditional mean (``coef`` = M P⁻¹ chol), h_x = 0.35 for k ≤ 2 and 0.5 above;
    nodes outside the ball |u| ≤ 7 are dropped (Gaussian mass < 1e-9 for k ≤ 4).
    """
    if h_x is None:
        h_x = TRAPEZOID_H_X if chol.shape[0] <= 2 else _NU_H_X_HIGH_K
    scale = np.max(np.abs(np.concatenate([chol, coef])), axis=0)
    u, w = tensor_rule([trapezoid_rule(float(c), h_x=h_x) for c in scale])
    inside = np.einsum("nc,nc->n", u, u) <= TRAPEZOID_RADIUS**2
    return u[inside] @ chol.T, w[inside] / w[inside].sum()


def _but_self(a: np.ndarray) -> np.ndarray:
    """Σ_{l≠j} a[n, l] at every (ν-node n, unit j)."""
    return a.sum(axis=1, keepdims=True) - a


class _WideSystem:
    """Packs (M, q) (or M alone when spherical) and evaluates the reduced flow.

    ``n_nu`` None: the ν-rule is :func:`_trapezoid_nu_rule`, rebuilt from M at every call (the
    student means sharpen as they grow); else the fixed rule of :func:`_nu_rule`.
    """

    def __init__(self, student: Activation, teacher: Activation, P, p: int, gamma: float,
                 noise: float, variance: bool, spherical: bool, n_nu: int | None,
                 n_z: int | None, batch: int = 1, decay: float = 0.0,
                 schedule: Schedule | None = None, d: float = math.inf):
        self.student, self.teacher, self.p, self.k, self.n_z = student, teacher, p, P.shape[0], n_z
        self.n_nu = n_nu
        # E[(Q⊥_jl)²] = q_j q_l / (d − k) for j ≠ l (0: the d = ∞ form, Q⊥ diagonal)
        self.inv_n = 1.0 / (d - self.k) if d > self.k else 0.0
        self.P_inv = np.linalg.inv(P)
        self.chol = np.linalg.cholesky(P)
        self.fixed = None if n_nu is None else self._with_ystar(*_nu_rule(P, n_nu,
                                                                          bool(teacher.kinks)))
        self.var_coef = gamma / (p * batch) if variance else 0.0
        self.noise, self.spherical = noise, spherical
        entire = teacher.closed_form in ("erf", "linear", "square") or teacher.polynomial
        self.nu_h_x = _NU_H_X_ENTIRE if student.closed_form == "erf" and entire else None
        self.decay = decay
        self.schedule = None if schedule is None or schedule.constant else schedule

    def pack(self, M, q):
        return M.ravel().copy() if self.spherical else np.concatenate([M.ravel(), q])

    def unpack(self, y):
        pk = self.p * self.k
        M = y[:pk].reshape(self.p, self.k)
        if self.spherical:
            return M, np.maximum(1.0 - self.in_span(M), 0.0)
        return M, y[pk:]

    def in_span(self, M):
        """diag(M P⁻¹ Mᵀ): the squared norm of each student inside the teacher span."""
        return _span(M, self.P_inv)

    def _with_ystar(self, nodes, w):
        return nodes, w, np.mean(self.teacher.fn(nodes), axis=1)  # y*(ν) at the nodes

    def rule(self, M):
        """ν-nodes (N, k), weights (N,) and y*(ν) at the nodes for students M."""
        if self.fixed is not None:
            return self.fixed
        return self._with_ystar(*_trapezoid_nu_rule(self.chol, M @ self.P_inv @ self.chol,
                                                    self.nu_h_x))

    def means(self, M, nodes):
        """(N, p): E[λ_j | ν] at the nodes."""
        return nodes @ (M @ self.P_inv).T

    def moments(self, M, q, nodes, curv: bool = False):
        s = np.sqrt(np.maximum(q, 0.0))
        return _moments(self.student, self.means(M, nodes), s, self.n_z, curv,
                        curv and bool(self.var_coef))

    def rhs(self, t, y):
        M, q = self.unpack(y)
        nodes, w, ystar = self.rule(M)
        p, c = self.p, self.inv_n
        mo, cu = self.moments(M, q, nodes, curv=True) if c else (self.moments(M, q, nodes), None)
        # arrays (N, p): ν-node n, unit j
        mu = (ystar - mo.g0.mean(axis=1))[:, None] + mo.g0 / p  # E[e | ν] without unit j
        drift_m = mu * mo.g1 - mo.c1 / p
        drift_q = mu * mo.g2 - (mo.c2 + mo.h) / p
        if c:  # the off-diagonal Q⊥ averaged to second order (module docstring)
            others = _but_self(cu.k0)  # Σ_{l≠j} K_l
            drift_m = drift_m - (0.5 * c / p) * cu.k1 * others
        dM = (drift_m * w[:, None]).T @ nodes
        dq = 2.0 * q * (w @ drift_q)
        if c:
            dq = dq - (c / p) * (w @ (others * (cu.k2q + 2.0 * cu.k0)))
        g = 1.0 if self.schedule is None else self.schedule.factor(t)
        if self.var_coef:
            vz = mo.w2 - mo.g0**2  # Var_z σ(λ_l | ν)
            var = _but_self(vz) / p**2
            second = (mu * mu + var + self.noise) * mo.h - 2.0 * mu * mo.kk / p + mo.ll / p**2
            if c:
                cov = (others**2 - _but_self(cu.k0**2)) * (0.5 * c / p**2)
                cross = mu * others + _but_self(cu.k0 * mo.g0) / p
                kw2 = _but_self(cu.kw2)  # Σ_{l≠j} K[σ²]_l
                second = second + cov * mo.h - (c / p) * cu.kh * cross + (c / p**2) * (
                    0.5 * cu.kh * kw2 + cu.kkk * others)
            dq = dq + self.var_coef * g * (w @ second)
        if self.decay:  # q = Q_jj − M_j P⁻¹ M_jᵀ decays as Q: −2ω q
            dM = dM - self.decay * M
            dq = dq - 2.0 * self.decay * q
        if g != 1.0:
            dM, dq = g * dM, g * dq
        if self.spherical:
            dqjj = dq + 2.0 * _span(dM, self.P_inv, M)
            return (dM - 0.5 * M * dqjj[:, None]).ravel()
        return np.concatenate([dM.ravel(), dq])

    def risk(self, M, q) -> float:
        nodes, w, ystar = self.rule(M)
        k0 = None
        if self.student.closed_form == "erf":  # only E σ and E σ² are needed
            means = self.means(M, nodes)
            g0, w2 = _erf_mean(means, np.maximum(q, 0.0))
            if self.inv_n:
                k0 = _curv_erf(means, np.sqrt(np.maximum(q, 0.0))).k0
        elif self.inv_n:
            mo, cu = self.moments(M, q, nodes, curv=True)
            g0, w2, k0 = mo.g0, mo.w2, cu.k0
        else:
            mo = self.moments(M, q, nodes)
            g0, w2 = mo.g0, mo.w2
        F = g0.mean(axis=1)
        spread = (w2 - g0**2).sum(axis=1)
        if k0 is not None:  # Σ_{j≠l} Cov(σ_j, σ_l | ν) averaged over Q⊥_jl
            spread = spread + 0.5 * self.inv_n * (k0.sum(axis=1) ** 2 - (k0**2).sum(axis=1))
        return 0.5 * float(((ystar - F) ** 2 + spread / self.p**2) @ w)


def _nodes_per_axis(k: int, n_nu: int | None, low_degree: bool) -> int:
    if n_nu is not None:
        return check.integer("n_nu", n_nu, low=2)
    if low_degree:  # linear/square units: every ν-integrand has degree ≤ 12, exact with 8 nodes
        return 8
    return {1: 48, 2: 20, 3: 12}.get(k, 8)


def _measured_dimension(init: Overlaps) -> float:
    """k + 1/mean_{j≠l} Z_jl², Z_jl = Q⊥_jl/√(q_j q_l): the d whose random off-diagonal
    orthogonal overlaps have the spread of the given start (∞ when they vanish: a start with
    diagonal Q⊥ gets the d = ∞ form)."""
    p, k = init.M.shape
    if p < 2:
        return math.inf
    perp = init.Q - init.M @ np.linalg.solve(init.P, init.M.T)
    q = np.maximum(np.diag(perp), 0.0)
    ok = q > 1e-12 * max(float(q.max()), 1e-300)
    z2 = perp[np.ix_(ok, ok)] ** 2 / np.outer(q[ok], q[ok])
    n = int(ok.sum())
    mean = (z2.sum() - np.trace(z2)) / max(n * (n - 1), 1)
    return k + 1.0 / mean if mean > 1e-14 else math.inf


def wide_system(prm: SgdOde, init: Reduced | Overlaps | None = None):
    """(system, M0, q0, P): the reduced flow :func:`integrate_wide` integrates for ``prm``, with
    its quadrature defaults, and its start (``init``, else ``prm``'s)."""
    init = prm.overlaps() if init is None else init
    n_z, n_nu = prm.n_z, prm.n_nu
    if init is None:
        if prm.d <= prm.k:
            raise ParameterError(f"d = {prm.d} must exceed k = {prm.k}")
        init = reduced_overlaps(*initial_weights(prm.p, prm.k, prm.d, prm.seed, prm.init_scale,
                                                 prm.spherical))
    dim = prm.d if prm.finite_d_on else math.inf
    if isinstance(init, Overlaps):
        span = _span(init.M, np.linalg.inv(init.P))
        dim = _measured_dimension(init) if prm.finite_d is not False else math.inf
        init = Reduced(init.M, np.maximum(np.diag(init.Q) - span, 0.0), init.P)
    M0, q0, P = (np.asarray(a, dtype=float) for a in init)
    p, k = M0.shape
    s, t = activations.get(prm.student), activations.get(prm.teacher)
    low_degree = all(a.closed_form in ("linear", "square") for a in (s, t))
    if n_nu is not None or t.kinks or (s.polynomial and t.polynomial):
        n_nu = _nodes_per_axis(k, n_nu, low_degree)
    if n_z is None and s.polynomial:
        n_z = 24
    system = _WideSystem(s, t, P, p, prm.gamma, prm.noise, prm.variance, prm.spherical, n_nu,
                         n_z, prm.batch, prm.weight_decay, Schedule.of(prm), dim)
    if prm.spherical and not np.allclose(q0 + system.in_span(M0), 1.0, atol=1e-8):
        raise ParameterError("the spherical ODE needs diag(Q) = 1 at the start")
    return system, M0, q0, P


def integrate_wide(prm: SgdOde) -> tuple[xr.Dataset, Run]:
    """The large-width reduced ODE (``twolayer.sgd.ode(..., reduction="wide")``).

    Same conventions as the full ODE (t = ν·γ/(p·d), variance term (γ/p)·E[e²σ'σ'] with label
    noise Δ). The start is ``init`` (reduced overlaps, or full overlaps whose off-diagonal
    orthogonal part is dropped) or the reduced overlaps of the weights
    :func:`twolayer.sgd.simulate` draws for (p, k, d, seed, init_scale, spherical). Cost per
    right-hand side ∝ p · N_ν (· N_z for activations without closed forms); memory ∝ p·k per
    recorded time. Returns R(t), M(t), q(t) and diag Q(t). ``finite_d`` (default: d < 1000)
    adds the second-order average over the off-diagonal orthogonal overlaps, variance
    q_j q_l/(d − k) with the parameters' d (module docstring; about 2× the cost per right-hand
    side for erf with the variance term); False gives the d = ∞ form Q = M P⁻¹ Mᵀ + diag(q).
    The attribute ``finite_d`` says which was used.

    Quadrature (None: the defaults). ``n_z``: Gauss–Hermite nodes for the z-moments; default 24
    for he1–he4 (exact) and the trapezoid rule for other smooth activations. ``n_nu``: nodes per
    ν-axis of Gauss–Hermite, or of Gauss–Legendre for a relu teacher; default 8 (exact) when both
    activations are linear or square, 48, 20, 12, 8 for k = 1, 2, 3, ≥ 4 for other polynomials
    and a relu teacher, and otherwise the trapezoid rule: N_ν ≈ (14 s/h_x)^k nodes times the
    ball's share of the cube (0.79 at k = 2, 0.52 at k = 3), h_x = 0.35 for k ≤ 2 and 0.5 above,
    s the largest teacher or student field scale in the span. Explicit ``n_nu``/``n_z`` select
    Gauss–Hermite, which is off by 0.1% to 40% for tanh at diag Q ≈ 2–8 with the former
    defaults (20, 24 at k = 2), but 4–13× cheaper at k = 2–3.
    """
    if prm.gamma_a > 0:
        raise ParameterError("the wide reduction has no trained second layer (gamma_a > 0); "
                             "use reduction='full' (--reduction full)")
    solver = "RK45" if prm.solver == "auto" else prm.solver
    rtol = 1e-7 if prm.rtol is None else prm.rtol
    system, M0, q0, P = wide_system(prm)
    p, k = M0.shape
    n_nu, n_z = system.n_nu, system.n_z
    t_eval = time_grid(prm.t_max, prm.per_decade)
    run = run_solver(system.rhs, system.pack(M0, q0), t_eval, prm, solver, rtol)
    risk = np.full(t_eval.size, np.nan)
    Ms = np.full((t_eval.size, p, k), np.nan)
    qs = np.full((t_eval.size, p), np.nan)
    for i in np.flatnonzero(np.all(np.isfinite(run.ys), axis=0)):
        Ms[i], qs[i] = system.unpack(run.ys[:, i])
        risk[i] = system.risk(Ms[i], qs[i])
    Q_diag = qs + _span(Ms, system.P_inv)
    ds = xr.Dataset(
        {"risk": ("t", risk), "M": (("t", "j", "r"), Ms), "q": (("t", "j"), qs),
         "Q_diag": (("t", "j"), Q_diag), "P": (("r", "s"), P)},
        coords={"t": t_eval}, attrs={"n_nu": -1 if n_nu is None else n_nu,
                                     "n_z": -1 if n_z is None else n_z,
                                     "finite_d": int(prm.finite_d_on)})
    return ds, run
