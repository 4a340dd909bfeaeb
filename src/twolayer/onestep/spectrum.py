"""What the giant step(s) do to the first layer, and the spectra the sRF theory integrates over.

Step map. Cui et al. 2024 (arXiv 2402.04980) model the network after the step by a spiked
random-features model (bulk plus a rank-one spike) and characterise its test error in their
Result 3.3 (arXiv v1 numbering); the map from (α0, η̃) to the model's parameters is derived here,
with a correction the reference code lacks: for a non-centred σ, f0(x) ≈ μ0 = E σ(z) at
initialisation, so the step's residual is ρ = y − μ0 with E ρ = μ0⋆ − μ0 and
E ρ² = E(σ⋆ − μ0)² + Δ. Row j after W1 = W0 − η̃·p·∇_W L reads

    w1_j = c₀·w0_j + η̃ μ1 g + (noise_j),      g = (1/n0) Σ_μ ρ_μ x_μ,

with c₀ = 1 + η̃ μ2 (μ0⋆ − μ0), μ2 = E σ''(z) the second Hermite coefficient (the mean residual
shrinks the bulk; the reference takes c₀ = 1 and E y² for E ρ², which puts its relu/tanh theory
11–34% above simulation at α0 = η̃ = 2), ‖g‖² =
μ1⋆² + E ρ²/α0, and ‖noise_j‖² = η̃² E ρ² (E σ'² − μ1²)/α0. Hence, with ĝ = g/‖g‖ and θ the
teacher direction:

- bulk variance  c = c₀² + η̃² E ρ² (E σ'² − μ1²)/α0   (``bulk_scale`` = √c),
- spike strength r_s = η̃ μ1 ‖g‖   (each preactivation gains r_s·ĝ·x),
- alignment      γ = ĝ·θ = μ1⋆/‖g‖.

The map needs μ1(σ) ≠ 0 (else no uniform spike) and, when μ2 ≠ 0, an even part-free teacher
(μ2⋆ = 0): otherwise W0θ θᵀ adds an order-one per-neuron term the sRF model lacks.

Several steps (:func:`step_maps`). Step t uses n_t = α0_t·d fresh samples, a = 1/√p stays,
so f(x) = (1/p) Σ_j σ(λ_j). Before step t, w_j = √c·s_j + v: a bulk row (s_j of unit norm,
nearly ⟂ v and θ) plus one spike vector v = r ĝ common to all neurons (a is the same for all).
With h_j = s_j·x ~ N(0, 1), κ = ĝ·x, u = θ·x = γκ + √(1−γ²) τ, λ_j = √c h_j + rκ and, as
p → ∞, f(x) → μ0(κ) = E_h σ(λ), so the residual is ρ = σ⋆(u) + √Δ ξ − μ0(κ). Stein's lemma
on E[ρ σ'(λ_j) x] (∇ρ = σ⋆'(u) θ − r ν1(κ) ĝ, ν_k(κ) = E_h σ⁽ᵏ⁾(λ); the bulk's part of ∇f is
O(1/√p)) and the sample noise split into its neuron-common part (weight ν1(κ)) and the rest:

    c₀ = 1 + η̃ E[ρ ν2(κ)]                                    (every row shrinks, spike included)
    v ← (c₀ − η̃ E[ν1²]) v + η̃ E[ν1(κ) σ⋆'(u)] θ + η̃ (E[ρ² ν1²]/α0)^½ ξ_t
    c ← c₀² c + η̃² E[ρ² (E_h σ'(λ)² − ν1²)]/α0

with ξ_t a fresh unit direction ⟂ θ, ξ_1, …, ξ_{t−1} (the span of the step's samples). v is
tracked in the orthonormal basis (θ, ξ_1, …, ξ_T); r = sign(μ1)|v|, ĝ = v/r, γ = ĝ·θ. Every
average is one-dimensional in κ after the inner Gaussian averages over h and τ. At r = 0 this
is the one-step map above term by term (ν1 = μ1, ν2 = μ2, E_τ σ⋆ = μ0⋆). The readout then sees
the sRF model with (√c_T, r_T, γ_T).

What is exact and what is conjectured. Exact as d, p, n_t → ∞ in proportion: the population
(Stein) terms and the norms of the noise parts, hence r_t, γ_t, the direction overlaps ĝ_t·ĝ_s
and c_t (checked against simulation at d = 1000: spike and overlap within 2.2 s.e. (1.1%)
at every step, tanh/tanh, tanh/sin, relu/tanh, erf/tanh). The spike stays rank one:
all neurons share the same update directions, the second singular value of W_t − W0 over √p
is bulk-sized (0.02–0.07 at d = 1000; times √p it is 0.56, 0.64 after steps 1, 2 at both
d = 300 and 1000 for tanh/tanh: an O(1) singular value, not a spike of order √p).
Assumed, as for one step: that the bulk after the steps is a rescaled Marchenko–Pastur bulk
independent of the spike (it is W0 plus one noise part per step; see the end of this part).
Left out: per-neuron terms of first order in s_j·θ — the θ-coefficient grows like
η̃ E[σ''σ⋆''] (s_j·θ), the shrink c₀ like η̃ E[σ'''σ⋆'] (s_j·θ), which through v adds rγ
times that along θ, and the sample noise is anisotropic along θ. They make the bulk
W(I + ε θθᵀ)-like; ``even_coupling`` reports the net
ε of the first two (they nearly cancel: −0.03 and −0.05 at the 2nd and 3rd step of tanh/sin
with η̃ = 2, where E[σ''σ⋆''] alone is +0.14, +0.17), and the measured bulk variance along θ over
a generic direction is 1.11 ± 0.04, 1.04 ± 0.04, 1.02 ± 0.04 after those three steps.
Where repeated large steps make the theory low (erf/tanh, three steps of η̃ = 3: 7–11% below
simulation at d = 1000), the fixed point on the simulated bulk (:func:`weights_rule`) agrees
with simulation within 1%: the gap is the bulk's spectrum, not the recursion.

Bulk spectrum at d = ∞: Ω = W Π Wᵀ (p × p) has the Marchenko–Pastur law of ratio β = p/d scaled
by c (mean eigenvalue c; an atom 1 − 1/β at 0 when β > 1). The squared projections of the spike
direction, F'_i = p (u_iᵀ W v̂)², spread evenly over all p eigenvectors, null ones included
(W v̂ is independent of the column space of WΠ, which it meets in a fraction 1/β when β > 1), so
their average is c·β; those of a direction ζ̂ ⟂ v̂, H'_i = p (u_iᵀ W ζ̂)², are β·D_i on average.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np
from numpy.polynomial.legendre import leggauss

from twolayer import activations, gaussian
from twolayer._validate import integer, real
from twolayer.errors import ModelAssumptionError, ParameterError

__all__ = ["SpectralRule", "StepMap", "finite_rule", "mp_rule", "step_map", "step_maps",
           "weights_rule"]

_TINY = 1e-10


@dataclass(frozen=True)
class StepMap:
    """sRF parameters induced by the step(s) (see the module docstring).

    After step t of several: ``spike`` r_t, ``alignment`` γ_t = ĝ_t·θ, ``bulk_scale`` √c_t,
    ``bulk_shrink`` the step's c₀_t, ``residual_var`` the step's E ρ²; ``direction`` ĝ_t in the
    orthonormal basis (θ, ξ_1, …, ξ_t) (θ the teacher, ξ_s the fresh noise direction of step s);
    ``even_coupling`` ε_t = η̃_t (E[σ''(λ) σ⋆''(θ·x)] + rγ E[σ'''(λ) σ⋆'(θ·x)]), the net
    first-order growth of the bulk along θ that the spiked model leaves out (0 at the first
    step, where the map refuses it).
    """

    bulk_scale: float  # √c: rms row norm of the bulk of W1
    bulk_shrink: float  # c₀ = 1 + η̃ μ2 (μ0⋆ − μ0)
    spike: float  # r_s = η̃ μ1 ‖g‖
    alignment: float  # γ = μ1⋆ / ‖g‖
    residual_var: float  # E ρ² = E(σ⋆ − μ0)² + Δ
    direction: tuple[float, ...] = ()
    even_coupling: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The scalar fields (``direction`` left out)."""
        return {k: v for k, v in asdict(self).items() if k != "direction"}


def step_map(student, teacher, alpha0: float, eta: float, noise: float = 0.0) -> StepMap:
    """The sRF parameters (√c, c₀, r_s, γ) after one giant step with (α0, η̃), label noise Δ.

    η̃ = 0 or α0 = 0 is random features: √c = 1, r_s = 0, γ = 0.
    """
    s, t = activations.get(student), activations.get(teacher)
    alpha0 = real("alpha0", alpha0, low=0.0)
    eta = real("eta", eta, low=0.0)
    noise = real("noise", noise, low=0.0)
    mu0, mu1, mu2 = s.mu(0), s.mu(1), s.mu(2)
    mu0t, mu1t = t.mu(0), t.mu(1)
    resid_var = t.second_moment - 2 * mu0 * mu0t + mu0**2 + noise
    if eta == 0.0 or alpha0 == 0.0:
        return StepMap(1.0, 1.0, 0.0, 0.0, resid_var)
    if abs(mu1) < _TINY:
        raise ModelAssumptionError(
            f"student {s.name!r} has mu1 = E sigma'(z) = 0: the step makes no uniform spike, "
            "so the spiked-RF theory does not apply"
        )
    if abs(mu2) > _TINY and abs(t.mu(2)) > _TINY:
        raise ModelAssumptionError(
            f"student {s.name!r} has E sigma'' != 0 and teacher {t.name!r} has an even part "
            "(mu2 != 0): the step adds a per-neuron term outside the spiked-RF theory"
        )
    shrink = 1.0 + eta * mu2 * (mu0t - mu0)
    ss = s.deriv_second_moment - mu1**2
    try:
        c = shrink**2 + eta**2 * resid_var * ss / alpha0
    except OverflowError:
        c = math.inf
    gnorm = math.sqrt(mu1t**2 + resid_var / alpha0)
    if not math.isfinite(c * gnorm * eta):
        raise ParameterError(f"eta = {eta:g} with alpha0 = {alpha0:g} overflows the step map (the "
                             "bulk variance c is not a finite number); use a smaller eta")
    return StepMap(math.sqrt(c), shrink, eta * mu1 * gnorm, mu1t / gnorm, resid_var)


def step_maps(student, teacher, alpha0s, etas, noise: float = 0.0,
              n_kappa: int = 96) -> list[StepMap]:
    """The sRF parameters after each of several giant steps (the recursion of the module
    docstring); one :class:`StepMap` per step, the last one is the network the readout sees.

    ``alpha0s`` and ``etas`` hold one entry per step (fresh α0_t·d samples each, a = 1/√p during
    the steps). A step with η̃_t = 0 or α0_t = 0 leaves W as it is. The first step is
    :func:`step_map` (by quadrature: the two agree to rounding); conditional Gaussian moments
    use an ``n_kappa``-point Hermite rule in κ and the activations' own rules in the rest.
    """
    s, t = activations.get(student), activations.get(teacher)
    a0s = [real("alpha0", a, low=0.0) for a in np.atleast_1d(alpha0s).tolist()]
    etas = [real("eta", e, low=0.0) for e in np.atleast_1d(etas).tolist()]
    noise = real("noise", noise, low=0.0)
    if len(a0s) != len(etas) or not a0s:
        raise ParameterError(f"alpha0 and eta give {len(a0s)} and {len(etas)} steps; give "
                             "non-empty lists of equal length (one entry per step)")
    k, wk = gaussian.hermite_rule(integer("n_kappa", n_kappa, low=4))
    orient = 1.0 if s.mu(1) >= 0 else -1.0  # r carries sign(μ1), as in step_map
    c, v = 1.0, np.zeros(len(a0s) + 1)  # bulk variance; spike in the basis (θ, ξ_1, …, ξ_T)
    out: list[StepMap] = []
    for i, (alpha0, eta) in enumerate(zip(a0s, etas, strict=True)):
        r = orient * float(np.linalg.norm(v))
        gam = v[0] / r if r != 0.0 else 0.0
        e = _step_moments(s, t, k, wk, math.sqrt(c), r, gam, noise)
        if eta == 0.0 or alpha0 == 0.0:  # no step: W stays
            out.append(_record(c, 1.0, r, gam, v, e["resid_var"], 0.0, i))
            continue
        if not out or all(m.spike == 0.0 for m in out):
            _check_spiked(s, t)
        eta64 = np.float64(eta)  # overflows to inf (checked below), not OverflowError
        with np.errstate(over="ignore", invalid="ignore"):
            shrink = float(1.0 + eta64 * e["shrink"])
            v = (shrink - eta64 * e["self"]) * v
            v[0] += eta64 * e["theta"]
            v[i + 1] = eta64 * np.sqrt(e["common"] / alpha0)
            c = float(np.float64(shrink) ** 2 * c + eta64**2 * e["bulk"] / alpha0)
        if not (math.isfinite(c) and np.all(np.isfinite(v))):
            raise ParameterError(f"eta = {eta:g} with alpha0 = {alpha0:g} at step {i + 1} "
                                 "overflows the step map (the bulk variance c is not a finite "
                                 "number); use a smaller eta")
        r = orient * float(np.linalg.norm(v))
        gam = v[0] / r if r != 0.0 else 0.0
        out.append(_record(c, shrink, r, gam, v, e["resid_var"], eta * e["even"], i))
    return out


def _record(c, shrink, r, gam, v, resid_var, even, i) -> StepMap:
    direction = tuple((v[: i + 2] / r).tolist()) if r != 0.0 else ()
    return StepMap(math.sqrt(c), shrink, r, float(gam), resid_var, direction, float(even))


def _check_spiked(s, t) -> None:
    """The assumptions of the spiked map at the first step (see :func:`step_map`)."""
    if abs(s.mu(1)) < _TINY:
        raise ModelAssumptionError(
            f"student {s.name!r} has mu1 = E sigma'(z) = 0: the step makes no uniform spike, "
            "so the spiked-RF theory does not apply"
        )
    if abs(s.mu(2)) > _TINY and abs(t.mu(2)) > _TINY:
        raise ModelAssumptionError(
            f"student {s.name!r} has E sigma'' != 0 and teacher {t.name!r} has an even part "
            "(mu2 != 0): the step adds a per-neuron term outside the spiked-RF theory"
        )


def _step_moments(s, t, k, wk, sc, r, gam, noise) -> dict[str, float]:
    """The Gaussian averages of one step at state (√c, r, γ), all reduced to sums over κ nodes.

    Student, given κ (h ~ N(0, 1)): μ0 = E σ(λ), ν1 = E σ'(λ), ν11 = E σ'(λ)², ν2 = E σ''(λ)
    (by Stein: E[σ'(λ) h]/√c, so kinks are fine), λ = √c h + rκ. Teacher, given κ
    (τ ~ N(0, 1), u = γκ + √(1−γ²) τ): E σ⋆(u), E σ⋆(u)², E σ⋆'(u), E σ⋆''(u).
    """
    loc, scale = r * k, np.full_like(k, sc)

    def es(g):
        return s.expect(lambda z: g(loc[:, None] + sc * z, z), loc=loc, scale=scale)

    mu0 = es(lambda lam, z: s.fn(lam))
    nu1 = es(lambda lam, z: s.deriv(lam))
    nu11 = es(lambda lam, z: s.deriv(lam) ** 2)
    nu2 = es(lambda lam, z: s.deriv(lam) * z) / sc
    nu3 = es(lambda lam, z: s.deriv(lam) * (z * z - 1.0)) / sc**2  # E σ'''(λ) (Stein twice)
    rho = math.sqrt(max(1.0 - gam * gam, 0.0))
    tloc = gam * k
    tsc = np.full_like(k, max(rho, 1e-300))

    def et(g):
        return t.expect(lambda z: g(tloc[:, None] + rho * z, z), loc=tloc, scale=tsc)

    h, hh, h1 = et(lambda u, z: t.fn(u)), et(lambda u, z: t.fn(u) ** 2), et(lambda u, z: t.deriv(u))
    if rho > 1e-4:
        h2 = et(lambda u, z: t.deriv(u) * z) / rho
    else:  # θ along the spike: E σ⋆''(κ)
        h2 = t.deriv2(tloc) if t.deriv2 is not None else np.full_like(k, np.nan)
    rr = hh - 2 * h * mu0 + mu0**2 + noise  # E[ρ² | κ]

    def mean(f):
        return float(f @ wk)

    return {"resid_var": mean(rr), "shrink": mean((h - mu0) * nu2), "self": mean(nu1**2),
            "theta": mean(nu1 * h1), "common": mean(nu1**2 * rr),
            "bulk": mean((nu11 - nu1**2) * rr),
            "even": mean(nu2 * h2) + r * gam * mean(nu3 * h1)}


@dataclass(frozen=True)
class SpectralRule:
    """Quadrature for the bulk averages (1/p) Σ_i g(D_i), (1/p) Σ F'_i g(D_i), (1/p) Σ H'_i g(D_i).

    ``nodes`` are eigenvalues D; ``w``, ``w_spike``, ``w_teacher`` the three sets of weights;
    ``w_cross`` (optional, None = 0) the cross weights (1/p) Σ X'_i g(D_i),
    X'_i = p (u_iᵀ W v̂)(u_iᵀ W ζ̂), which vanish on average for a bulk independent of θ.
    """

    nodes: np.ndarray
    w: np.ndarray
    w_spike: np.ndarray
    w_teacher: np.ndarray
    label: str
    w_cross: np.ndarray | None = None


@cache
def _mp_unit(beta: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the continuous part of MP(ratio β, mean 1) (total mass min(1, 1/β)).

    x = a + (b − a)(1 − cos φ)/2 makes the density smooth in φ ∈ [0, π] (even at β = 1, where
    a = 0 and the density has a 1/√x edge), so Gauss–Legendre in φ converges exponentially.
    """
    a, b = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2
    t, wt = leggauss(n)
    phi = 0.5 * math.pi * (t + 1.0)
    x = a + 0.5 * (b - a) * (1.0 - np.cos(phi))
    # density sqrt((b-x)(x-a)) / (2π β x); dx = (b-a)/2 sin φ dφ; sqrt(...) = (b-a)/2 sin φ
    if a > 0:
        dens_over = np.sin(phi) ** 2 / x
    else:  # sin²φ / x = 2 (1 + cos φ) / b exactly when a = 0
        dens_over = 2.0 * (1.0 + np.cos(phi)) / b
    w = (0.5 * (b - a)) ** 2 * dens_over / (2 * math.pi * beta) * (0.5 * math.pi) * wt
    return x, w


def mp_rule(beta: float, scale: float = 1.0, n: int = 200) -> SpectralRule:
    """d = ∞ rule: Marchenko–Pastur law of ratio β = p/d, mean eigenvalue ``scale`` (= c)."""
    beta = real("beta", beta, low=0.0, strict=True)
    x, w = _mp_unit(beta, integer("n", n))
    x = scale * x
    if beta > 1.0:  # atom at 0 of mass 1 − 1/β
        x, w = np.append(x, 0.0), np.append(w, 1.0 - 1.0 / beta)
    w_spike = scale * beta * w
    w_teacher = beta * x * w
    return SpectralRule(x, w, w_spike, w_teacher, f"MP(beta={beta:g}, c={scale:g})")


def finite_rule(d: int, p: int, scale: float, rng: np.random.Generator) -> SpectralRule:
    """Finite-d rule from one draw: W0 with unit rows (p × d), a spike direction v̂ and ζ̂ ⟂ v̂.

    Costs one p × p eigendecomposition (O(p³)).
    """
    w0 = rng.standard_normal((p, d))
    w0 /= np.linalg.norm(w0, axis=1, keepdims=True)
    w = math.sqrt(scale) * w0
    v = rng.standard_normal(d)
    v /= np.linalg.norm(v)
    zeta = rng.standard_normal(d)
    zeta -= (zeta @ v) * v
    zeta /= np.linalg.norm(zeta)
    wv, wz = w @ v, w @ zeta
    omega = w @ w.T - np.outer(wv, wv)  # W Π Wᵀ with Π = I − v̂ v̂ᵀ
    evals, evecs = np.linalg.eigh(omega)
    evals = np.clip(evals, 0.0, None)
    f = p * (evecs.T @ wv) ** 2
    h = p * (evecs.T @ wz) ** 2
    ones = np.full(p, 1.0 / p)
    return SpectralRule(evals, ones, f / p, h / p, f"finite(d={d}, p={p})")


def weights_rule(w: np.ndarray, theta: np.ndarray, direction: np.ndarray | None = None,
                 spike: float | None = None) -> tuple[SpectralRule, np.ndarray, float]:
    """Finite rule from given first-layer weights W1 (p × d) and the teacher direction θ.

    The spike direction ĝ is ``direction`` (default: the row mean, which all neurons share when
    a = 1/√p), oriented so that the spike strength r_s = mean(W1 ĝ) is ≥ 0 (``spike`` fixes
    r_s instead); the bulk is W = W1 − r_s 1ĝᵀ. The rule is that of Ω = W Π Wᵀ = W1 Π W1ᵀ
    (Π = I − ĝĝᵀ), with F' from Wĝ, H' from Wζ̂ (ζ̂ ∝ θ − (θ·ĝ)ĝ) and the cross weights
    X'_i = p (u_iᵀWĝ)(u_iᵀWζ̂), which a bulk correlated with θ makes non-zero. Returns the rule,
    ĝ and r_s. Costs one p × p eigendecomposition.
    """
    w, theta = np.asarray(w, float), np.asarray(theta, float)
    if w.ndim != 2 or theta.shape != (w.shape[1],):
        raise ParameterError(f"weights_rule needs W of shape (p, d) and theta of shape (d,); got "
                             f"{w.shape} and {theta.shape}")
    p, d = w.shape
    g = w.mean(axis=0) if direction is None else np.asarray(direction, float)
    if not np.linalg.norm(g) > 0:
        raise ParameterError("weights_rule: no spike direction (the rows of W have mean zero)")
    g = g / np.linalg.norm(g)
    s = w @ g
    if spike is None:
        if s.mean() < 0:
            g, s = -g, -s
        spike = float(s.mean())
    zeta = theta - (theta @ g) * g
    zn = np.linalg.norm(zeta)
    zeta = zeta / zn if zn > 1e-12 else zeta
    wv, wz = s - spike, w @ zeta  # W ĝ and W ζ̂ for the bulk W
    evals, evecs = np.linalg.eigh(w @ w.T - np.outer(s, s))
    fv, fz = evecs.T @ wv, evecs.T @ wz
    rule = SpectralRule(np.clip(evals, 0.0, None), np.full(p, 1.0 / p), fv**2, fz**2,
                        f"weights(p={p}, d={d})", w_cross=fv * fz)
    return rule, g, spike
